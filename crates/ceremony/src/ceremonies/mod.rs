//! The ceremonies, and what they share: the run (transcript + outputs), subject names,
//! PEM files, key references and the throwaway key used to lint before the HSM.

pub(crate) mod backup;
pub(crate) mod crl;
pub(crate) mod cross_sign;
pub(crate) mod intermediate;
pub(crate) mod key;
pub(crate) mod root;
pub(crate) mod token;
pub(crate) mod verify;

use std::path::{Path, PathBuf};

use crate::keystore::CeremonyToken;
use carimbo_kms::SignatureAlgorithm;
use carimbo_pki::{DistinguishedName, DnAttribute, pem_decode, pem_encode};
use serde_json::{Value, json};

use crate::config::{Loaded, SubjectSection};
use crate::outputs::Outputs;
use crate::transcript::{Transcript, sha256_hex};
use crate::{CeremonyError, CeremonyKind, Outcome, Result};

/// One ceremony in progress: its transcript and its planned outputs.
pub(crate) struct Run {
    kind: CeremonyKind,
    transcript: Transcript,
    transcript_path: PathBuf,
    outputs: Outputs,
    written: Vec<PathBuf>,
    /// Set once the HSM has been changed (a key generated), so a failure leaves a
    /// transcript of what happened.
    hsm_changed: bool,
}

impl Run {
    /// Plans `outputs` (which must not exist) plus the transcript, and records the
    /// config.
    pub(crate) fn start<T>(
        kind: CeremonyKind,
        loaded: &Loaded<T>,
        outputs: &[PathBuf],
        transcript_path: PathBuf,
        operators: &[String],
        description: Option<&str>,
    ) -> Result<Self> {
        let mut all = outputs.to_vec();
        all.push(transcript_path.clone());
        let outputs = Outputs::plan(&all)?;
        let mut transcript = Transcript::new(kind.as_str());
        transcript.record(
            "config",
            json!({
                "file": file_name(&loaded.path),
                "sha256": sha256_hex(&loaded.bytes),
                "operators": operators,
                "description": description,
                "tool": concat!("ca-ceremony ", env!("CARGO_PKG_VERSION")),
            }),
        );
        Ok(Self {
            kind,
            transcript,
            transcript_path,
            outputs,
            written: Vec::new(),
            hsm_changed: false,
        })
    }

    /// Records a step.
    pub(crate) fn record(&mut self, step: &str, fields: Value) {
        self.transcript.record(step, fields);
    }

    /// Notes that the HSM now holds something new.
    pub(crate) fn hsm_changed(&mut self) {
        self.hsm_changed = true;
    }

    /// Stages an output and records its hash.
    pub(crate) fn output(&mut self, path: &Path, bytes: Vec<u8>) -> Result<()> {
        let size = bytes.len();
        let hash = self.outputs.stage(path, bytes)?;
        self.transcript.record(
            "output",
            json!({ "path": file_name(path), "sha256": hash, "bytes": size }),
        );
        self.written.push(path.to_path_buf());
        Ok(())
    }

    /// Stages a secret output (mode 0600, e.g. a share file) and records its hash.
    pub(crate) fn private_output(&mut self, path: &Path, bytes: Vec<u8>) -> Result<()> {
        let size = bytes.len();
        let hash = self.outputs.stage_private(path, bytes)?;
        self.transcript.record(
            "output",
            json!({ "path": relative_name(&self.transcript_path, path), "sha256": hash, "bytes": size }),
        );
        self.written.push(path.to_path_buf());
        Ok(())
    }

    /// Writes everything; returns the outcome with the transcript's final hash.
    pub(crate) fn finish(mut self, mut report: Vec<String>) -> Result<Outcome> {
        self.transcript.record("complete", json!({}));
        let final_hash = self.transcript.final_hash().to_owned();
        let bytes = self.transcript.to_bytes();
        self.outputs.stage(&self.transcript_path, bytes)?;
        self.written.push(self.transcript_path.clone());
        self.outputs.commit()?;
        report.push(format!(
            "{} ceremony complete; transcript {} final hash (record it): {final_hash}",
            self.kind,
            file_name(&self.transcript_path)
        ));
        Ok(Outcome {
            outputs: self.written,
            final_hash: Some(final_hash),
            report,
        })
    }

    /// Ends a failed run: when the HSM was changed, writes the transcript so far, with
    /// the error, next to where the transcript would have gone (never over a file).
    pub(crate) fn fail(mut self, error: CeremonyError) -> CeremonyError {
        if !self.hsm_changed {
            return error;
        }
        self.transcript
            .record("failed", json!({ "error": error.to_string() }));
        let mut name = self.transcript_path.clone().into_os_string();
        name.push(format!(
            ".failed-{}",
            time::OffsetDateTime::now_utc().unix_timestamp()
        ));
        let path = PathBuf::from(name);
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .and_then(|mut file| std::io::Write::write_all(&mut file, &self.transcript.to_bytes()));
        match written {
            Ok(()) => CeremonyError::Refused(format!(
                "{error} (the HSM was changed before the failure; see {})",
                path.display()
            )),
            Err(_) => error,
        }
    }
}

/// Runs `steps` inside `run`, turning a failure into [`Run::fail`].
pub(crate) async fn guarded<F>(mut run: Run, steps: F) -> Result<Outcome>
where
    F: AsyncFnOnce(&mut Run) -> Result<Vec<String>>,
{
    match steps(&mut run).await {
        Ok(report) => run.finish(report),
        Err(error) => Err(run.fail(error)),
    }
}

/// `path` relative to the transcript's directory when it is below it (share files in
/// a subdirectory), else its file name.
pub(crate) fn relative_name(transcript: &Path, path: &Path) -> String {
    transcript
        .parent()
        .and_then(|dir| path.strip_prefix(dir).ok())
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| file_name(path))
}

/// The file name of `path`, for transcripts (outputs sit next to the transcript).
pub(crate) fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// A distinguished name from a config section.
pub(crate) fn subject_name<T>(
    loaded: &Loaded<T>,
    field: &str,
    section: &SubjectSection,
) -> Result<DistinguishedName> {
    let mut name = DistinguishedName::new();
    let parts = [
        (DnAttribute::Country, section.country.as_deref(), "country"),
        (DnAttribute::State, section.state.as_deref(), "state"),
        (
            DnAttribute::Locality,
            section.locality.as_deref(),
            "locality",
        ),
        (
            DnAttribute::Organization,
            section.organization.as_deref(),
            "organization",
        ),
        (
            DnAttribute::OrganizationalUnit,
            section.organizational_unit.as_deref(),
            "organizational-unit",
        ),
        (
            DnAttribute::CommonName,
            Some(section.common_name.as_str()),
            "common-name",
        ),
    ];
    for (attribute, value, key) in parts {
        if let Some(value) = value {
            name.push(attribute, value)
                .map_err(|e| loaded.error(&format!("{field}.{key}"), e.to_string()))?;
        }
    }
    Ok(name)
}

/// Reads a PEM file with `label` (e.g. `CERTIFICATE`); the error names `field`.
pub(crate) fn read_pem<T>(
    loaded: &Loaded<T>,
    field: &str,
    path: &Path,
    label: &str,
) -> Result<Vec<u8>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| loaded.error(field, format!("cannot read {}: {e}", path.display())))?;
    pem_decode(&text, label).map_err(|e| loaded.error(field, format!("{}: {e}", path.display())))
}

/// PEM text of a public key.
pub(crate) fn public_key_pem(spki: &[u8]) -> Vec<u8> {
    pem_encode("PUBLIC KEY", spki).into_bytes()
}

/// The key reference file the service loads to use a CA key.
pub(crate) fn key_reference_toml(
    token: &dyn CeremonyToken,
    key_label: &str,
    reference: &carimbo_kms::KeyReference,
    algorithm: SignatureAlgorithm,
    spki: &[u8],
) -> Vec<u8> {
    format!(
        "# Written by ca-ceremony. The service opens this CA key through its PKCS#11 provider.\n\
         version = 1\n\
         provider = {provider:?}\n\
         reference = {reference:?}\n\
         token-label = {token_label:?}\n\
         token-serial = {token_serial:?}\n\
         key-label = {key_label:?}\n\
         algorithm = \"{algorithm}\"\n\
         public-key-sha256 = {hash:?}\n",
        provider = reference.provider,
        reference = reference.to_string(),
        token_label = token.token_label(),
        token_serial = token.token_serial(),
        hash = sha256_hex(spki),
    )
    .into_bytes()
}

/// The public key of a throwaway software key of `algorithm`, to lint a certificate
/// before any key exists in the HSM.
pub(crate) fn throwaway_spki(algorithm: SignatureAlgorithm) -> Result<Vec<u8>> {
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{self as sig, KeyPair};
    use carimbo_kms::encoding::{OID_P256, OID_P384, ec_spki, ed25519_spki, rsa_spki_from_pkcs1};
    let failed = || CeremonyError::Refused(format!("cannot make a throwaway {algorithm} key"));
    let rng = SystemRandom::new();
    Ok(match algorithm {
        SignatureAlgorithm::EcdsaP256Sha256 | SignatureAlgorithm::EcdsaP384Sha384 => {
            let (signing, curve) = if algorithm == SignatureAlgorithm::EcdsaP256Sha256 {
                (&sig::ECDSA_P256_SHA256_ASN1_SIGNING, OID_P256)
            } else {
                (&sig::ECDSA_P384_SHA384_ASN1_SIGNING, OID_P384)
            };
            let document =
                sig::EcdsaKeyPair::generate_pkcs8(signing, &rng).map_err(|_| failed())?;
            let pair =
                sig::EcdsaKeyPair::from_pkcs8(signing, document.as_ref()).map_err(|_| failed())?;
            ec_spki(curve, pair.public_key().as_ref())
        }
        SignatureAlgorithm::Ed25519 => {
            let document = sig::Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| failed())?;
            let pair = sig::Ed25519KeyPair::from_pkcs8(document.as_ref()).map_err(|_| failed())?;
            ed25519_spki(pair.public_key().as_ref())
        }
        SignatureAlgorithm::Rsa { modulus, .. } => {
            let size = if modulus.bits() == 3072 {
                aws_lc_rs::rsa::KeySize::Rsa3072
            } else {
                aws_lc_rs::rsa::KeySize::Rsa4096
            };
            let pair = sig::RsaKeyPair::generate(size).map_err(|_| failed())?;
            rsa_spki_from_pkcs1(pair.public_key().as_ref())
        }
        _ => {
            return Err(CeremonyError::Refused(format!(
                "{algorithm} is not supported"
            )));
        }
    })
}

/// Opens the issuer key `label` in `token` and checks it is the key of the issuer
/// certificate (same public key) before anything is signed.
pub(crate) async fn open_issuer_key(
    token: &dyn CeremonyToken,
    label: &str,
    algorithm: SignatureAlgorithm,
    issuer_spki: &[u8],
) -> Result<std::sync::Arc<dyn carimbo_kms::SigningKey>> {
    let reference = token.find_key(label).await?.ok_or_else(|| {
        CeremonyError::Refused(format!(
            "no key labelled {label:?} in token {} ({})",
            token.token_label(),
            token.token_serial()
        ))
    })?;
    let key = token.signing_key(&reference, algorithm).await?;
    if key.public_key_der() != issuer_spki {
        return Err(CeremonyError::Refused(format!(
            "key {label:?} in token {} is not the key of the issuer certificate",
            token.token_label()
        )));
    }
    Ok(key)
}

/// A random serial from the token's RNG (or the host's when the token has none).
pub(crate) async fn serial_from(
    token: &dyn CeremonyToken,
) -> Result<(carimbo_pki::SerialNumber, &'static str)> {
    let (bytes, source) = match token.random_bytes(20).await {
        Ok(bytes) => (bytes, "hsm"),
        Err(_) => {
            let mut bytes = vec![0u8; 20];
            aws_lc_rs::rand::fill(&mut bytes)
                .map_err(|_| CeremonyError::Refused("random generator failed".into()))?;
            (bytes, "host")
        }
    };
    Ok((
        carimbo_pki::SerialNumber::from_random_bytes(&bytes)?,
        source,
    ))
}

/// Lint findings as JSON for the transcript.
pub(crate) fn findings_json(findings: &[carimbo_pki::Finding]) -> Value {
    Value::Array(
        findings
            .iter()
            .map(|f| json!({ "lint": f.lint, "severity": format!("{:?}", f.severity), "message": f.message }))
            .collect(),
    )
}
