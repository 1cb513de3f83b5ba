//! Bedrock: proves model access for the allowlisted models with a one-token request each.

use aws_sdk_bedrockruntime::types::{
    ContentBlock, ConversationRole, InferenceConfiguration, Message,
};
use claude_gateway::api::catalog;

use super::{err_text, Aws};
use crate::error::{Error, Result};

/// The Bedrock id a profile model name is probed with: the newest listed built-in model of a
/// family, the built-in model's inference profile for the Region, or the id as written.
pub fn probe_id(model: &str, region: &str) -> String {
    let geo = catalog::geo_for_region(region);
    let family = format!("-{model}-");
    let builtin = if ["opus", "sonnet", "haiku", "fable"].contains(&model) {
        catalog::BUILT_IN
            .iter()
            .find(|b| b.listed && b.id.contains(&family))
    } else {
        catalog::built_in(model)
    };
    match builtin {
        Some(b) if !catalog::is_bedrock_native(model) => format!("{geo}{}", b.bedrock),
        _ => model.to_owned(),
    }
}

/// Sends one tiny request per model; fails naming every model without access.
pub async fn check_access(aws: &Aws, models: &[String], region: &str) -> Result<()> {
    let mut denied = Vec::new();
    for m in models {
        let id = probe_id(m, region);
        let msg = Message::builder()
            .role(ConversationRole::User)
            .content(ContentBlock::Text("ping".into()))
            .build()
            .map_err(|e| Error::failed(format!("cannot build the Bedrock probe: {e}")))?;
        let res = aws
            .bedrock
            .converse()
            .model_id(&id)
            .messages(msg)
            .inference_config(InferenceConfiguration::builder().max_tokens(1).build())
            .send()
            .await;
        match res {
            Ok(_) => println!("  bedrock: {m} ({id}) answers"),
            Err(e) => {
                let text = err_text(&e);
                if text.contains("Throttling") {
                    println!("  bedrock: {m} ({id}) is throttled but reachable");
                } else {
                    denied.push(format!("{m} ({id}): {text}"));
                }
            }
        }
    }
    if denied.is_empty() {
        Ok(())
    } else {
        Err(Error::failed(format!(
            "Bedrock model access is missing (request it once per account in the Bedrock console, or set BEDROCK_ACCESS_CHECK=false):\n  {}",
            denied.join("\n  ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_ids() {
        assert_eq!(
            probe_id("claude-sonnet-4-5", "eu-west-1"),
            "eu.anthropic.claude-sonnet-4-5-20250929-v1:0"
        );
        assert!(probe_id("haiku", "us-east-1").starts_with("us.anthropic.claude-haiku-"));
        assert_eq!(
            probe_id("global.anthropic.claude-opus-4-8", "us-east-1"),
            "global.anthropic.claude-opus-4-8"
        );
    }
}
