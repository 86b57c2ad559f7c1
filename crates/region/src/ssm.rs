//! `AWS::SSM::Parameter`: a parameter in the region's parameter store (the `ssm` crate), the
//! same store the SSM API and templates' `{{resolve:ssm:...}}` read.

use std::sync::Arc;

use async_trait::async_trait;
use cfn_stacks::model::ResourceRecord;
use cfn_stacks::{Provided, ProviderError, ResourceProvider, ResourceRequest};
use ssm::{ParameterType, PutInput, Ssm, SsmError};

pub struct SsmProvider {
    pub ssm: Arc<Ssm>,
}

fn provider_error(e: SsmError) -> ProviderError {
    if e.is_client_error() {
        ProviderError::service("SSM", e.code(), e)
    } else {
        ProviderError::service("SSM", "InternalFailure", e)
    }
}

#[async_trait]
impl ResourceProvider for SsmProvider {
    async fn create(&self, req: &ResourceRequest<'_>) -> Result<Provided, ProviderError> {
        let mut provided = cfn_stacks::generic::model(req, None);
        let value = req
            .properties
            .get("Value")
            .and_then(|v| v.as_str().map(str::to_string).or_else(|| Some(v.to_string())))
            .unwrap_or_default();
        let kind =
            req.properties.get("Type").and_then(|v| v.as_str()).unwrap_or("String").to_string();
        let description =
            req.properties.get("Description").and_then(|v| v.as_str()).map(str::to_string);
        self.ssm
            .put(PutInput {
                name: provided.physical_id.clone(),
                value: value.clone(),
                kind: Some(ParameterType::parse(&kind).unwrap_or_default()),
                description,
                overwrite: true,
            })
            .map_err(provider_error)?;
        provided.attributes.insert("Value".into(), serde_json::Value::String(value));
        provided.attributes.insert("Type".into(), serde_json::Value::String(kind));
        provided.modelled = false;
        Ok(provided)
    }

    async fn delete(
        &self,
        _: &ResourceRequest<'_>,
        current: &ResourceRecord,
    ) -> Result<(), ProviderError> {
        if let Some(name) = &current.physical_id {
            match self.ssm.delete(name) {
                Ok(()) | Err(SsmError::NotFound(_)) => {}
                Err(e) => return Err(provider_error(e)),
            }
        }
        Ok(())
    }
}
