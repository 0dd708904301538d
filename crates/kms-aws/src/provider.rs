//! The AWS KMS key provider: a KMS client for one region, key generation, and the key
//! handles.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_kms::Client;
use aws_sdk_kms::config::timeout::TimeoutConfig;
use aws_sdk_kms::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_kms::types::{KeyState, KeyUsageType, Tag};
use carimbo_kms::{
    GenerateRequest, GeneratedKey, HmacKey, KeyAlgorithm, KeyEncryptionKey, KeyProvider,
    KeyReference, SignatureAlgorithm, SigningKey,
};

use crate::keys::{self, AwsHmacKey, AwsKek, AwsSigningKey};
use crate::{AwsKmsConfig, AwsKmsError, PROVIDER_ID};

/// Message signed to test a freshly generated key.
const SELF_TEST_MESSAGE: &[u8] = b"carimbo-kms-aws key generation self-test";
/// The shortest waiting period AWS allows before it deletes a key.
pub const DELETION_WINDOW_DAYS: i32 = 7;

/// Keys in AWS KMS, in one region.
///
/// Keys are created by KMS `CreateKey` and never leave it; key references hold the key
/// ARN. The client takes its credentials from the standard AWS chain (environment,
/// shared config and credentials files with the configured profile, web identity,
/// ECS or EC2 instance role). Cloning is cheap and shares the client.
#[derive(Clone)]
pub struct AwsKmsProvider {
    pub(crate) client: Client,
    region: String,
    endpoint: Option<String>,
}

impl fmt::Debug for AwsKmsProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsKmsProvider")
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

/// A key ARN taken apart.
#[derive(Debug)]
struct KeyArn {
    /// The whole ARN, used for every call.
    arn: String,
    /// The key id (after `key/`).
    key_id: String,
}

impl AwsKmsProvider {
    /// Builds the client for the configured region (and endpoint and profile), with
    /// credentials from the standard AWS chain. No request is sent yet: missing or
    /// refused credentials show on the first key operation.
    pub async fn open(config: &AwsKmsConfig) -> Result<Self, AwsKmsError> {
        Self::check(config)?;
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(config.region.clone()))
            .timeout_config(timeouts(config));
        if let Some(profile) = &config.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(endpoint) = &config.endpoint {
            loader = loader.endpoint_url(endpoint);
        }
        let shared = loader.load().await;
        Ok(Self::with_client(Client::new(&shared), config))
    }

    /// Builds the client with fixed credentials instead of the AWS chain, reading no
    /// environment variable or file: for emulators and tests. Services use
    /// [`AwsKmsProvider::open`].
    pub fn open_with_static_credentials(
        config: &AwsKmsConfig,
        access_key_id: &str,
        secret_access_key: &str,
    ) -> Result<Self, AwsKmsError> {
        Self::check(config)?;
        let credentials = Credentials::new(
            access_key_id,
            secret_access_key,
            None,
            None,
            "carimbo-static",
        );
        let mut builder = aws_sdk_kms::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(config.region.clone()))
            .credentials_provider(credentials)
            .timeout_config(timeouts(config));
        if let Some(endpoint) = &config.endpoint {
            builder = builder.endpoint_url(endpoint);
        }
        Ok(Self::with_client(
            Client::from_conf(builder.build()),
            config,
        ))
    }

    fn check(config: &AwsKmsConfig) -> Result<(), AwsKmsError> {
        config.validate().map_err(|message| AwsKmsError::Config {
            origin: "(given in code)".into(),
            message,
        })
    }

    pub(crate) fn with_client(client: Client, config: &AwsKmsConfig) -> Self {
        Self {
            client,
            region: config.region.clone(),
            endpoint: config.endpoint.clone(),
        }
    }

    /// The region of the keys.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The state AWS reports for the key of `reference` (`Enabled`, `Disabled`,
    /// `PendingDeletion`, ...), for operators and tests.
    pub async fn key_state(&self, reference: &KeyReference) -> Result<String, AwsKmsError> {
        let key = self.locate(reference)?;
        let output = self
            .client
            .describe_key()
            .key_id(&key.arn)
            .send()
            .await
            .map_err(|e| AwsKmsError::from_sdk("DescribeKey", &key.arn, e))?;
        Ok(output
            .key_metadata
            .and_then(|m| m.key_state)
            .map_or_else(|| "unknown".to_owned(), |s| s.as_str().to_owned()))
    }

    /// Checks that AWS KMS answers with these credentials: one `ListKeys` of at most
    /// one key (no key is used). A refusal of `ListKeys` itself (the service's role
    /// need not hold `kms:ListKeys`) still proves the endpoint reachable and the
    /// credentials accepted, so it counts as success. For readiness checks.
    pub async fn check_reachable(&self) -> Result<(), AwsKmsError> {
        match self.client.list_keys().limit(1).send().await {
            Ok(_) => Ok(()),
            Err(error) => match AwsKmsError::from_sdk("ListKeys", "-", error) {
                AwsKmsError::AccessDenied { .. } => Ok(()),
                other => Err(other),
            },
        }
    }

    /// Resolves a reference to a key ARN of this provider's region.
    fn locate(&self, reference: &KeyReference) -> Result<KeyArn, AwsKmsError> {
        let refuse = |reason: String| AwsKmsError::BadReference {
            reference: reference.to_string(),
            reason,
        };
        if reference.provider != PROVIDER_ID {
            return Err(refuse(format!(
                "belongs to provider '{}', not '{PROVIDER_ID}'",
                reference.provider
            )));
        }
        // arn:PARTITION:kms:REGION:ACCOUNT:key/KEY-ID
        let parts: Vec<&str> = reference.id.splitn(6, ':').collect();
        let (region, resource) = match parts.as_slice() {
            ["arn", partition, "kms", region, account, resource]
                if !partition.is_empty() && !account.is_empty() =>
            {
                (*region, *resource)
            }
            _ => {
                return Err(refuse(
                    "is not an AWS KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/KEY-ID)".into(),
                ));
            }
        };
        let key_id = resource
            .strip_prefix("key/")
            .filter(|id| {
                !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            })
            .ok_or_else(|| refuse("does not name a key (key/KEY-ID)".into()))?;
        if region != self.region {
            return Err(refuse(format!(
                "is a key of region {region}, but this provider uses region {}",
                self.region
            )));
        }
        Ok(KeyArn {
            arn: reference.id.clone(),
            key_id: key_id.to_owned(),
        })
    }

    /// Reads the public key of `arn` and checks the key can sign `algorithm`.
    pub(crate) async fn open_signing_key(
        &self,
        arn: &str,
        algorithm: SignatureAlgorithm,
    ) -> Result<AwsSigningKey, AwsKmsError> {
        let (key_spec, signing_algorithm) = keys::signing_spec(algorithm)?;
        let output = self
            .client
            .get_public_key()
            .key_id(arn)
            .send()
            .await
            .map_err(|e| AwsKmsError::from_sdk("GetPublicKey", arn, e))?;
        let invalid = |reason: String| AwsKmsError::InvalidKey {
            key: arn.to_owned(),
            reason,
        };
        if let Some(usage) = &output.key_usage
            && *usage != KeyUsageType::SignVerify
        {
            return Err(invalid(format!(
                "has key usage {}, not SIGN_VERIFY",
                usage.as_str()
            )));
        }
        // KeySpec, or the older CustomerMasterKeySpec (same names) that some
        // emulators return alone.
        #[allow(deprecated)]
        let spec = output
            .key_spec
            .as_ref()
            .map(|spec| spec.as_str().to_owned())
            .or_else(|| {
                output
                    .customer_master_key_spec
                    .as_ref()
                    .map(|spec| spec.as_str().to_owned())
            });
        match spec {
            Some(spec) if spec == key_spec.as_str() => {}
            Some(spec) => {
                return Err(invalid(format!(
                    "is a {spec} key, which cannot sign {algorithm}"
                )));
            }
            None => return Err(invalid("has no key spec".into())),
        }
        if let Some(offered) = &output.signing_algorithms
            && !offered.contains(&signing_algorithm)
        {
            return Err(invalid(format!(
                "does not offer {}",
                signing_algorithm.as_str()
            )));
        }
        let public_key = output.public_key.map(|b| b.into_inner()).ok_or_else(|| {
            AwsKmsError::IncompleteResponse {
                operation: "GetPublicKey",
                key: arn.to_owned(),
                field: "PublicKey",
            }
        })?;
        Ok(AwsSigningKey {
            client: self.client.clone(),
            arn: arn.to_owned(),
            algorithm,
            signing_algorithm,
            public_key,
        })
    }

    /// Schedules the deletion of a key that failed its checks at generation.
    async fn discard(&self, arn: &str) {
        let key_id = arn.rsplit_once("key/").map_or(arn, |(_, id)| id);
        if let Err(error) = self
            .client
            .schedule_key_deletion()
            .key_id(key_id)
            .pending_window_in_days(DELETION_WINDOW_DAYS)
            .send()
            .await
        {
            let error = AwsKmsError::from_sdk("ScheduleKeyDeletion", arn, error);
            tracing::warn!(%error, "could not schedule the deletion of a rejected key");
        }
    }
}

fn timeouts(config: &AwsKmsConfig) -> TimeoutConfig {
    TimeoutConfig::builder()
        .operation_timeout(config.timeout)
        .build()
}

fn tag(key: &str, value: String) -> Result<Tag, AwsKmsError> {
    Tag::builder()
        .tag_key(key)
        .tag_value(value)
        .build()
        .map_err(|e| AwsKmsError::InvalidInput(format!("tag {key}: {e}")))
}

#[async_trait]
impl KeyProvider for AwsKmsProvider {
    fn id(&self) -> &str {
        PROVIDER_ID
    }

    /// Creates a key with `CreateKey` (description and tags name the Carimbo key and
    /// version); for signing keys, reads the public key and signs a test message.
    async fn generate(&self, request: &GenerateRequest<'_>) -> carimbo_kms::Result<GeneratedKey> {
        request.algorithm.check_purpose(request.purpose)?;
        let (key_spec, key_usage) = keys::key_spec(request.algorithm)?;
        let description = format!(
            "Carimbo key {} version {} (purpose {}, {})",
            request.name, request.version, request.purpose, request.algorithm
        );
        let tags = vec![
            tag("carimbo:key-name", request.name.to_string())?,
            tag("carimbo:key-version", request.version.to_string())?,
            tag("carimbo:purpose", request.purpose.to_string())?,
            tag("carimbo:algorithm", request.algorithm.to_string())?,
        ];
        let output = self
            .client
            .create_key()
            .key_spec(key_spec)
            .key_usage(key_usage)
            .description(description)
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|e| AwsKmsError::from_sdk("CreateKey", "-", e))?;
        let arn =
            output
                .key_metadata
                .and_then(|m| m.arn)
                .ok_or(AwsKmsError::IncompleteResponse {
                    operation: "CreateKey",
                    key: "-".into(),
                    field: "KeyMetadata.Arn",
                })?;
        let public_key = match request.algorithm {
            KeyAlgorithm::Signature(algorithm) => {
                let checked = async {
                    let key = self.open_signing_key(&arn, algorithm).await?;
                    key.sign(SELF_TEST_MESSAGE).await?;
                    Ok::<_, carimbo_kms::Error>(key.public_key)
                }
                .await;
                match checked {
                    Ok(public_key) => Some(public_key),
                    Err(error) => {
                        self.discard(&arn).await;
                        return Err(error);
                    }
                }
            }
            _ => None,
        };
        tracing::info!(
            key = %arn,
            name = %request.name,
            version = request.version,
            algorithm = %request.algorithm,
            "created key in AWS KMS"
        );
        Ok(GeneratedKey {
            reference: KeyReference {
                provider: PROVIDER_ID.into(),
                id: arn,
            },
            public_key,
        })
    }

    /// Opens a signing key: reads its public key (`GetPublicKey`) and checks its key
    /// spec and usage fit `algorithm`.
    async fn signing_key(
        &self,
        reference: &KeyReference,
        algorithm: SignatureAlgorithm,
    ) -> carimbo_kms::Result<Arc<dyn SigningKey>> {
        let key = self.locate(reference)?;
        Ok(Arc::new(self.open_signing_key(&key.arn, algorithm).await?))
    }

    /// Opens a key-encryption key without a request: a key of another type fails at
    /// its first use with a clear error from AWS.
    async fn key_encryption_key(
        &self,
        reference: &KeyReference,
    ) -> carimbo_kms::Result<Arc<dyn KeyEncryptionKey>> {
        let key = self.locate(reference)?;
        Ok(Arc::new(AwsKek {
            client: self.client.clone(),
            arn: key.arn,
        }))
    }

    /// Opens an HMAC key without a request (as for KEKs).
    async fn hmac_key(&self, reference: &KeyReference) -> carimbo_kms::Result<Arc<dyn HmacKey>> {
        let key = self.locate(reference)?;
        Ok(Arc::new(AwsHmacKey {
            client: self.client.clone(),
            arn: key.arn,
        }))
    }

    /// Schedules the key's deletion with the shortest window AWS allows (7 days): AWS
    /// never deletes a key at once. The key is unusable from now on; until the window
    /// ends an AWS administrator can still cancel the deletion. A key already pending
    /// deletion, or already gone, counts as destroyed.
    async fn destroy(&self, reference: &KeyReference) -> carimbo_kms::Result<()> {
        let key = self.locate(reference)?;
        // By key id: the key is in this account and region (ScheduleKeyDeletion is not
        // allowed across accounts), and some emulators accept only the id here.
        let result = self
            .client
            .schedule_key_deletion()
            .key_id(&key.key_id)
            .pending_window_in_days(DELETION_WINDOW_DAYS)
            .send()
            .await;
        match result {
            Ok(output) => {
                tracing::info!(
                    key = %key.arn,
                    deletion_date = ?output.deletion_date,
                    "scheduled the deletion of an AWS KMS key"
                );
                Ok(())
            }
            Err(error) => match AwsKmsError::from_sdk("ScheduleKeyDeletion", &key.arn, error) {
                AwsKmsError::KeyNotFound { .. } => {
                    tracing::warn!(key = %key.arn, "AWS KMS key to destroy is already gone");
                    Ok(())
                }
                state @ AwsKmsError::KeyState { .. } => {
                    let pending = self
                        .client
                        .describe_key()
                        .key_id(&key.arn)
                        .send()
                        .await
                        .ok()
                        .and_then(|o| o.key_metadata)
                        .and_then(|m| m.key_state)
                        .is_some_and(|s| s == KeyState::PendingDeletion);
                    if pending { Ok(()) } else { Err(state.into()) }
                }
                other => Err(other.into()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

    fn provider() -> AwsKmsProvider {
        AwsKmsProvider::open_with_static_credentials(
            &AwsKmsConfig::new("eu-west-1"),
            "AKIDEXAMPLE",
            "not-a-secret",
        )
        .unwrap()
    }

    fn reference(id: &str) -> KeyReference {
        KeyReference {
            provider: PROVIDER_ID.into(),
            id: id.into(),
        }
    }

    #[test]
    fn key_arns_of_the_region_are_accepted() {
        let key = provider().locate(&reference(ARN)).unwrap();
        assert_eq!(key.arn, ARN);
        assert_eq!(key.key_id, "1234abcd-12ab-34cd-56ef-1234567890ab");
        let mrk = "arn:aws:kms:eu-west-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab";
        assert!(provider().locate(&reference(mrk)).is_ok());
    }

    #[test]
    fn other_references_are_refused_with_the_reason() {
        for (provider_id, id, reason) in [
            ("pkcs11", ARN, "belongs to provider 'pkcs11'"),
            (
                "aws",
                "1234abcd-12ab-34cd-56ef-1234567890ab",
                "not an AWS KMS key ARN",
            ),
            (
                "aws",
                "arn:aws:kms:eu-west-1:111122223333:alias/carimbo",
                "does not name a key",
            ),
            (
                "aws",
                "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
                "region us-east-1",
            ),
            (
                "aws",
                "arn:aws:s3:eu-west-1:111122223333:key/x",
                "not an AWS KMS key ARN",
            ),
        ] {
            let reference = KeyReference {
                provider: provider_id.into(),
                id: id.into(),
            };
            let error = provider().locate(&reference).unwrap_err().to_string();
            assert!(error.contains(reason), "{id}: {error}");
        }
    }

    #[test]
    fn debug_shows_no_credentials() {
        let text = format!("{:?}", provider());
        assert!(text.contains("eu-west-1"), "{text}");
        assert!(!text.contains("not-a-secret"), "{text}");
        assert!(!text.contains("AKIDEXAMPLE"), "{text}");
    }
}
