//! Plain HTTP from inside an instance (metadata, wait-condition handles, file sources).

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

async fn request(
    method: http::Method,
    url: &str,
    body: Option<String>,
    headers: &[(&str, &str)],
) -> anyhow::Result<(u16, String)> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut builder = http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    let request = builder.body(Full::new(Bytes::from(body.unwrap_or_default())))?;
    let response =
        tokio::time::timeout(std::time::Duration::from_secs(30), client.request(request)).await??;
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await?.to_bytes();
    Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
}

/// GET; errors unless the status is 2xx.
pub async fn get(url: &str) -> anyhow::Result<String> {
    let (status, body) = request(http::Method::GET, url, None, &[]).await?;
    anyhow::ensure!((200..300).contains(&status), "GET {url}: HTTP {status}");
    Ok(body)
}

/// PUT a body; errors unless the status is 2xx.
pub async fn put(url: &str, body: String, content_type: &str) -> anyhow::Result<()> {
    let (status, text) =
        request(http::Method::PUT, url, Some(body), &[("content-type", content_type)]).await?;
    anyhow::ensure!((200..300).contains(&status), "PUT {url}: HTTP {status}: {text}");
    Ok(())
}
