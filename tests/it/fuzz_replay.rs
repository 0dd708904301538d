//! Replays every committed fuzz input — the seed corpora (`fuzz/corpus/<target>/`) and
//! the inputs that once crashed (`fuzz/regressions/<target>/`) — through the same
//! harness the coverage-guided targets run (`carimbo_tests::fuzzing`), on the stable
//! toolchain: none may panic. Running the fuzzers themselves is `scripts/fuzz.sh`.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use carimbo_tests::fuzzing::{TARGETS, run};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_corpus_and_regression_input_is_handled_without_panic() {
    let mut failures = Vec::new();
    for target in TARGETS {
        let corpus = files_in(&fuzz_dir().join("corpus").join(target));
        assert!(
            !corpus.is_empty(),
            "fuzz/corpus/{target}/ has no seed inputs"
        );
        let regressions = files_in(&fuzz_dir().join("regressions").join(target));
        for file in corpus.iter().chain(&regressions) {
            let data = std::fs::read(file).unwrap();
            if catch_unwind(AssertUnwindSafe(|| run(target, &data))).is_err() {
                failures.push(file.display().to_string());
            }
        }
    }
    assert!(failures.is_empty(), "inputs that panicked: {failures:#?}");
}

#[test]
fn every_target_has_a_fuzz_target_file() {
    for target in TARGETS {
        let path = fuzz_dir().join("fuzz_targets").join(format!("{target}.rs"));
        assert!(path.is_file(), "{} is missing", path.display());
    }
}

/// Writes the seeds that only our own code can make (envelopes under the harness's
/// KEK, JWTs signed by the harness's key) into `fuzz/corpus/`. Run by hand when the
/// formats change:
/// `cargo test -p carimbo-tests --test it fuzz_replay::write_generated_seeds -- --ignored`.
#[test]
#[ignore]
fn write_generated_seeds() {
    use carimbo_tests::fuzzing::{
        JWT_AUDIENCE, JWT_ISSUER, JWT_NOW, envelope_seed, jwt_names, jwt_sign,
    };
    use serde_json::json;

    let write = |target: &str, name: &str, data: &[u8]| {
        let dir = fuzz_dir().join("corpus").join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), data).unwrap();
    };
    let min = carimbo_kms::envelope::MIN_SEGMENT_SIZE as usize;
    for (name, length) in [
        ("empty", 0),
        ("short", 13),
        ("one-segment", min),
        ("boundary-plus-one", min + 1),
        ("two-segments", 2 * min),
        ("three-partial", 2 * min + 300),
    ] {
        let plaintext: Vec<u8> = (0..length).map(|i| (i % 251) as u8).collect();
        write(
            "envelope",
            &format!("{name}.crmb"),
            &envelope_seed(&plaintext, min as u32),
        );
    }
    write(
        "envelope",
        "segment-2048.crmb",
        &envelope_seed(b"larger segments", 2048),
    );

    let header = json!({"alg": "EdDSA", "kid": "fuzz-1", "typ": "JWT"});
    let claims = json!({
        "iss": JWT_ISSUER,
        "aud": JWT_AUDIENCE,
        "sub": "web-1",
        "ns": "ml",
        "sa": "trainer",
        "iat": JWT_NOW - 60,
        "nbf": JWT_NOW - 60,
        "exp": JWT_NOW + 600,
    });
    let pair = |header: &serde_json::Value, claims: &serde_json::Value| {
        format!("{header}\n{claims}").into_bytes()
    };
    // Compact tokens, verified as sent.
    write(
        "jwt",
        "valid.jwt",
        jwt_sign(header.to_string().as_bytes(), claims.to_string().as_bytes()).as_bytes(),
    );
    write(
        "jwt",
        "alg-none.jwt",
        b"eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
    );
    // Header and claims, signed by the harness.
    write("jwt", "valid.pair", &pair(&header, &claims));
    // The valid seed passes every check, so the fuzzer starts behind them.
    assert_eq!(
        jwt_names(&pair(&header, &claims)).unwrap(),
        [
            "dns:web-1.svc.example.com",
            "uri:spiffe://fuzz.example/ns/ml/sa/trainer"
        ]
    );
    let mut expired = claims.clone();
    expired["exp"] = json!(JWT_NOW - 3600);
    write("jwt", "expired.pair", &pair(&header, &expired));
    let mut audiences = claims.clone();
    audiences["aud"] = json!(["other", JWT_AUDIENCE]);
    write("jwt", "audience-array.pair", &pair(&header, &audiences));
    let mut bad_name = claims.clone();
    bad_name["sub"] = json!("a/../b");
    write("jwt", "bad-claim-value.pair", &pair(&header, &bad_name));
    let mut nested = claims.clone();
    nested["ns"] = json!({"deep": [1, 2, {"x": null}]});
    write("jwt", "claim-not-string.pair", &pair(&header, &nested));
    write(
        "jwt",
        "header-crit.pair",
        &pair(
            &json!({"alg": "EdDSA", "kid": "fuzz-1", "crit": ["exp"]}),
            &claims,
        ),
    );
    write(
        "jwt",
        "header-unknown-kid.pair",
        &pair(&json!({"alg": "EdDSA", "kid": "nope"}), &claims),
    );
    write(
        "jwt",
        "header-wrong-alg.pair",
        &pair(&json!({"alg": "ES256", "kid": "fuzz-1"}), &claims),
    );
}
