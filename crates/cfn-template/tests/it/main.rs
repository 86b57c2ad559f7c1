//! Integration tests of the template engine (one test binary, as the workspace does).

mod broken;
mod corpus;
mod functions;
mod support;
