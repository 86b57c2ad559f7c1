//! A client connection that counts the bytes through it (ProcessedBytes): counted locally and
//! added to the load balancer's counter every few kilobytes and when the connection ends, so
//! the request path touches no shared counter per read or write.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::metrics::Counters;

/// Bytes counted before they are added to the shared counter.
const FLUSH_AT: u64 = 16 * 1024;

pub struct Metered<S> {
    inner: S,
    counters: Arc<Counters>,
    pending: u64,
}

impl<S> Metered<S> {
    pub fn new(inner: S, counters: Arc<Counters>) -> Metered<S> {
        Metered { inner, counters, pending: 0 }
    }

    fn count(&mut self, n: usize) {
        self.pending += n as u64;
        if self.pending >= FLUSH_AT {
            Counters::add(&self.counters.processed_bytes, std::mem::take(&mut self.pending));
        }
    }
}

impl<S> Drop for Metered<S> {
    fn drop(&mut self) {
        if self.pending > 0 {
            Counters::add(&self.counters.processed_bytes, self.pending);
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Metered<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = buf.filled().len() - before;
        if read > 0 {
            self.count(read);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Metered<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = polled {
            self.count(n);
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = polled {
            self.count(n);
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
