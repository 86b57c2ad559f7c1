//! AWS errors as responses.

use crate::xml::XmlOut;

/// An error answer: AWS's code and message, the HTTP status, and whether the caller is at fault.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    pub code: String,
    pub message: String,
    pub status: u16,
}

impl ApiError {
    pub fn new(code: &str, message: impl Into<String>, status: u16) -> ApiError {
        ApiError { code: code.into(), message: message.into(), status }
    }

    /// A service's error by its code: 500 for InternalFailure, else a client error.
    pub fn service(code: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(code, message, if code == "InternalFailure" { 500 } else { 400 })
    }

    pub fn validation(message: impl Into<String>) -> ApiError {
        ApiError::new("ValidationError", message, 400)
    }

    pub fn invalid_action(action: &str) -> ApiError {
        ApiError::new(
            "InvalidAction",
            format!("The action {action} is not valid for this web service."),
            400,
        )
    }

    /// The Query protocol's error document.
    pub fn to_xml(&self, xmlns: &str, request_id: &str) -> String {
        let mut x = XmlOut::new();
        x.open("ErrorResponse", Some(xmlns));
        x.open("Error", None);
        x.text("Type", if self.status < 500 { "Sender" } else { "Receiver" });
        x.text("Code", &self.code);
        x.text("Message", &self.message);
        x.close();
        x.text("RequestId", request_id);
        x.finish()
    }
}

impl From<cfn_stacks::CfnError> for ApiError {
    fn from(e: cfn_stacks::CfnError) -> ApiError {
        let status = if e.is_client_error() { 400 } else { 500 };
        ApiError::new(e.code(), e.to_string(), status)
    }
}
