//! Wait-condition handles whose URLs point at this region's API, so that `cfn-signal URL` and a
//! plain `curl -X PUT` from an instance both reach it.

use async_trait::async_trait;
use cfn_stacks::model::ResourceRecord;
use cfn_stacks::{Provided, ProviderError, ResourceProvider, ResourceRequest};

pub struct WaitHandles {
    pub endpoint: String,
}

#[async_trait]
impl ResourceProvider for WaitHandles {
    async fn create(&self, request: &ResourceRequest<'_>) -> Result<Provided, ProviderError> {
        let stack_uuid = request.stack_id.rsplit('/').next().unwrap_or("stack");
        let url = format!(
            "{}/cumulo/waitcondition/{stack_uuid}/{}/{}",
            self.endpoint,
            request.logical_id,
            aws_ids::hex(16)
        );
        Ok(Provided { physical_id: url, attributes: Default::default(), modelled: false })
    }

    async fn delete(
        &self,
        _: &ResourceRequest<'_>,
        _: &ResourceRecord,
    ) -> Result<(), ProviderError> {
        Ok(())
    }
}
