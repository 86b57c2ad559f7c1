//! The load balancer's own responses: nginx-style HTML with CRLF lines (the 503 page is 162 bytes), `Server: awselb/2.0` (as ALB answers).

use bytes::Bytes;

pub fn reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        403 => "Forbidden",
        405 => "Not Allowed",
        408 => "Request Time-out",
        413 => "Request Entity Too Large",
        414 => "Request-URI Too Large",
        460 => "Client Closed Request",
        463 => "Bad Request",
        464 => "Bad Request",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Temporarily Unavailable",
        504 => "Gateway Time-out",
        505 => "HTTP Version Not Supported",
        _ => "Error",
    }
}

/// The body ALB sends with an error of its own.
pub fn body(status: u16) -> Bytes {
    let title = format!("{status} {}", reason(status));
    Bytes::from(format!(
        "<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n</body>\r\n</html>\r\n"
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_503_page_is_albs() {
        let page = super::body(503);
        assert_eq!(page.len(), 162);
        assert!(page.starts_with(
            b"<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>"
        ));
    }
}
