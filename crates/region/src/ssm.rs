//! The region's SSM parameter store: the public parameters every region has (latest AMI ids),
//! and the `AWS::SSM::Parameter` resources stacks create. Templates read it through
//! `AWS::SSM::Parameter::Value<...>` parameters and `{{resolve:ssm:...}}`.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use cfn_stacks::model::ResourceRecord;
use cfn_stacks::{Provided, ProviderError, ResourceProvider, ResourceRequest};
use cfn_template::ParameterStore;
use serde::{Deserialize, Serialize};
use store::Store;

const PARAMETERS: &str = "ssm/parameter";

#[derive(Clone, Debug, Serialize, Deserialize)]
struct ParameterRecord {
    name: String,
    value: String,
    version: u64,
    #[serde(default)]
    kind: String,
}

pub struct Ssm {
    store: Arc<Store>,
    public: BTreeMap<String, String>,
}

impl Ssm {
    pub fn new(store: Arc<Store>) -> Ssm {
        Ssm { store, public: cfn_template::public_parameters() }
    }
}

impl ParameterStore for Ssm {
    fn get(&self, name: &str, _version: Option<&str>) -> Option<String> {
        if let Ok(Some(p)) = self.store.get::<ParameterRecord>(PARAMETERS, name) {
            return Some(p.value);
        }
        self.public.get(name).cloned()
    }
}

/// `AWS::SSM::Parameter`: a parameter in the region's store.
pub struct SsmProvider {
    pub store: Arc<Store>,
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
        let previous: Option<ParameterRecord> =
            self.store
                .get(PARAMETERS, &provided.physical_id)
                .map_err(|e| ProviderError::service("SSM", "InternalFailure", e))?;
        let record = ParameterRecord {
            name: provided.physical_id.clone(),
            value: value.clone(),
            version: previous.map_or(1, |p| p.version + 1),
            kind: kind.clone(),
        };
        self.store
            .put(PARAMETERS, &record.name, &record)
            .map_err(|e| ProviderError::new(e.to_string()))?;
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
            self.store.delete(PARAMETERS, name).map_err(|e| ProviderError::new(e.to_string()))?;
        }
        Ok(())
    }
}
