//! Scheduled jobs across replicas on one PostgreSQL database: each job runs on the
//! replica holding its lease, another replica takes it over when the holder dies or
//! stalls, and a stalled ex-leader that wakes up cannot publish (its writes carry a
//! stale fencing token).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use carimbo_store::{
    AuditStore, CertificateStatus, CertificateStore, JobLeaseStore, PostgresOptions, PostgresStore,
    RevocationStore,
};
use carimbo_tests::write_private;
use serde_json::{Value, json};

use crate::cli_dev::{free_port, start_dev};
use crate::replicas::{Replica, carimbo, crl, issue_through, serve_config, start_replica_with};
use crate::server::{p256, s};

/// Lease TTL of the replicas in these tests: takeovers within seconds.
const LEASE_TTL: &str = "3s";

/// A development CA switched to one PostgreSQL database, with replica configs.
struct Cluster {
    dir: tempfile::TempDir,
    data: PathBuf,
    runtime: tokio::runtime::Runtime,
    store: PostgresStore,
    /// Dropped last: the database goes with it.
    _database: carimbo_store::postgres_testing::TestDatabase,
}

impl Cluster {
    /// On the shared test server, or on `server` (a test's private one).
    fn new(server: Option<&carimbo_store::postgres_testing::Server>) -> Option<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let database = match server {
            Some(server) => runtime.block_on(carimbo_store::postgres_testing::database_on(server)),
            None => runtime.block_on(carimbo_store::postgres_testing::database())?,
        };
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let (mut dev, _) = start_dev(&data, free_port(), free_port());
        dev.kill().unwrap();
        let _ = dev.wait();
        write_private(&data.join("pg.url"), database.url.as_bytes());
        let store = runtime
            .block_on(PostgresStore::connect(
                &database.url,
                &PostgresOptions::default(),
            ))
            .unwrap();
        Some(Self {
            dir,
            data,
            runtime,
            store,
            _database: database,
        })
    }

    /// Starts replica `name` (its own audit chain `name`, lease TTL [`LEASE_TTL`]),
    /// logging to `{name}.log`, with extra environment variables.
    fn start(&self, name: &str, env: &[(&str, &str)]) -> Replica {
        let (api, publication) = (free_port(), free_port());
        let config = serve_config(&self.data, name, api, publication, true);
        let mut text = std::fs::read_to_string(&config).unwrap();
        text.push_str(&format!(
            "\n[audit]\nchain = \"{name}\"\n\n[jobs]\nlease-ttl = \"{LEASE_TTL}\"\n"
        ));
        std::fs::write(&config, text).unwrap();
        start_replica_with(&config, api, publication, env, Some(&self.log(name)))
    }

    fn log(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.log"))
    }

    /// Waits until `job`'s lease is held by replica `name`; returns its fence.
    fn wait_for_leader(&self, job: &str, name: &str, within: Duration) -> u64 {
        let deadline = Instant::now() + within;
        loop {
            let lease = self.runtime.block_on(self.store.job_lease(job)).unwrap();
            if let Some(lease) = &lease
                && lease.fence.holder.starts_with(&format!("{name}/"))
                && lease.expires_at > time::OffsetDateTime::now_utc()
            {
                return lease.fence.token;
            }
            assert!(
                Instant::now() < deadline,
                "{name} never held the {job} lease: {lease:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The `crl.published` events of every replica's audit chain: (number, entries,
    /// lease holder, fence), by scope.
    fn crl_publications(&self, chains: &[&str]) -> BTreeMap<String, Vec<(u64, u64, String, u64)>> {
        let mut by_scope: BTreeMap<String, Vec<(u64, u64, String, u64)>> = BTreeMap::new();
        for chain in chains {
            let events = self
                .runtime
                .block_on(self.store.audit_events(chain, 0, 100_000))
                .unwrap();
            for event in events.iter().map(|e| &e.event) {
                if event["type"] != "crl.published" {
                    continue;
                }
                let scope = match event["shard"].as_u64() {
                    Some(shard) => format!("{}/{shard}", event["issuer"].as_str().unwrap()),
                    None => event["issuer"].as_str().unwrap().to_owned(),
                };
                by_scope.entry(scope).or_default().push((
                    event["number"].as_u64().unwrap(),
                    event["entries"].as_u64().unwrap(),
                    event["lease"]["holder"].as_str().unwrap().to_owned(),
                    event["lease"]["fence"].as_u64().unwrap(),
                ));
            }
        }
        for publications in by_scope.values_mut() {
            publications.sort();
        }
        by_scope
    }

    fn log_text(&self, name: &str) -> String {
        std::fs::read_to_string(self.log(name)).unwrap_or_default()
    }
}

fn signal(replica: &Replica, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &replica.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {signal}");
}

/// Whether the process is stopped (state `T` in `/proc/PID/stat`).
pub(crate) fn is_stopped(replica: &Replica) -> bool {
    std::fs::read_to_string(format!("/proc/{}/stat", replica.child.id()))
        .ok()
        .and_then(|stat| {
            let after_name = stat.rsplit_once(')')?.1.trim_start().to_owned();
            after_name.chars().next()
        })
        == Some('T')
}

fn hex_serial_of(pem_path: &Path) -> String {
    let der = carimbo_pki::pem_decode(&std::fs::read_to_string(pem_path).unwrap(), "CERTIFICATE")
        .unwrap();
    let (_, parsed) = x509_parser::parse_x509_certificate(&der).unwrap();
    hex::encode(parsed.raw_serial())
}

#[test]
fn a_job_leader_stalled_past_its_lease_cannot_publish_when_it_wakes_up() {
    let Some(cluster) = Cluster::new(None) else {
        return;
    };
    // A starts first and takes the CRL job. Its failpoint stops it (SIGSTOP) between
    // signing its next CRL with entries and publishing it: the worst moment to stall.
    let mut a = cluster.start(
        "replica-a",
        &[("CARIMBO_TEST_FAILPOINT", "crl-stop-before-publish")],
    );
    let first_fence = cluster.wait_for_leader("crl", "replica-a", Duration::from_secs(10));
    let mut b = cluster.start("replica-b", &[]);
    let bundle = cluster.data.join("ca-bundle.pem");
    let admin = cluster.data.join("admin.token");

    // A certificate issued and revoked through B: the CRL job (on A) must publish.
    let out = cluster.dir.path().join("cert");
    issue_through(&b, &cluster.data, "dns:stall.localhost", &out);
    let serial = hex_serial_of(&out.join("cert.pem"));
    let (ok, _, stderr) = carimbo(&[
        "revoke",
        "--ca",
        &b.api,
        "--ca-bundle",
        s(&bundle),
        "--serial",
        &serial,
        "--admin-token-file",
        s(&admin),
        "--reason",
        "superseded",
    ]);
    assert!(ok, "{stderr}");

    // A signs the CRL and stalls before publishing it.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !is_stopped(&a) {
        assert!(
            Instant::now() < deadline,
            "A never reached its failpoint: {}",
            cluster.log_text("replica-a")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let stalled = Instant::now();

    // B takes the job over once A's lease lapses, with a new fence, and publishes.
    let new_fence = cluster.wait_for_leader("crl", "replica-b", Duration::from_secs(20));
    assert!(new_fence > first_fence, "{new_fence} after {first_fence}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let number_b = loop {
        if let Some((number, true)) = crl(&b, &serial) {
            break number;
        }
        assert!(
            Instant::now() < deadline,
            "B never published the revocation"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    eprintln!(
        "B published CRL {number_b} listing the revocation {:?} after A stalled",
        stalled.elapsed()
    );

    // A wakes up and carries on with the CRL it signed under the old fence: refused.
    signal(&a, "-CONT");
    let deadline = Instant::now() + Duration::from_secs(15);
    while !cluster
        .log_text("replica-a")
        .contains("CRL not published: fenced")
    {
        assert!(
            Instant::now() < deadline,
            "A's stale publication was not fenced: {}",
            cluster.log_text("replica-a")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Nothing of A's was kept, B's CRL is the latest, and B keeps the job.
    let latest = cluster
        .runtime
        .block_on(cluster.store.latest_crl("int-server"))
        .unwrap()
        .unwrap();
    assert!(latest.number >= number_b);
    let publications = cluster.crl_publications(&["replica-a", "replica-b"]);
    for (number, entries, holder, fence) in &publications["int-server"] {
        if holder.starts_with("replica-a/") {
            assert_eq!(*fence, first_fence);
            assert_eq!(*entries, 0, "A published CRL {number} with the revocation");
        }
    }
    assert!(
        publications["int-server"]
            .iter()
            .any(|(n, e, h, f)| *n == number_b
                && *e == 1
                && h.starts_with("replica-b/")
                && *f == new_fence),
        "{publications:?}"
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        cluster.wait_for_leader("crl", "replica-b", Duration::from_secs(1)),
        new_fence
    );
    // A still serves, with B's CRL.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some((number, true)) = crl(&a, &serial) {
            assert!(number >= number_b);
            break;
        }
        assert!(Instant::now() < deadline, "A never loaded B's CRL");
        std::thread::sleep(Duration::from_millis(200));
    }
    a.terminate();
    b.terminate();
}

/// What the load saw acknowledged: certificates returned and revocations confirmed.
#[derive(Default)]
struct Acknowledged {
    issued: Vec<(String, Vec<u8>)>,
    revoked: Vec<String>,
    /// Statuses of refused or failed requests, by status code (0: no response).
    failures: BTreeMap<u16, usize>,
}

/// One worker of the load: mint a token, issue, and revoke every second certificate,
/// each request through the next replica in turn, until `stop`.
async fn load_worker(
    client: reqwest::Client,
    replicas: Vec<String>,
    admin: String,
    csr: String,
    worker: usize,
    stop: Arc<AtomicBool>,
) -> Acknowledged {
    let mut acknowledged = Acknowledged::default();
    let mut turn = worker;
    let mut next = || {
        turn += 1;
        replicas[turn % replicas.len()].clone()
    };
    let mut round = 0usize;
    while !stop.load(Ordering::SeqCst) {
        round += 1;
        let post = |url: String, bearer: String, body: Value| {
            let client = client.clone();
            async move {
                match client
                    .post(url)
                    .bearer_auth(bearer)
                    .json(&body)
                    .send()
                    .await
                {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        (
                            status,
                            response.json::<Value>().await.unwrap_or(Value::Null),
                        )
                    }
                    Err(_) => (0, Value::Null),
                }
            }
        };
        let (status, reply) = post(
            format!("{}/v1/admin/tokens", next()),
            admin.clone(),
            json!({"provisioner": "dev", "profile": "server",
                   "sans": ["dns:load.localhost"], "ttl": "1h", "expires_in": "5m"}),
        )
        .await;
        if status != 201 {
            *acknowledged.failures.entry(status).or_default() += 1;
            continue;
        }
        let token = reply["token"].as_str().unwrap().to_owned();
        let (status, reply) = post(
            format!("{}/v1/certificates", next()),
            token,
            json!({"csr": csr, "profile": "server"}),
        )
        .await;
        if status != 201 {
            *acknowledged.failures.entry(status).or_default() += 1;
            continue;
        }
        let serial = reply["serial"].as_str().unwrap().to_owned();
        let der =
            carimbo_pki::pem_decode(reply["certificate"].as_str().unwrap(), "CERTIFICATE").unwrap();
        acknowledged.issued.push((serial.clone(), der));
        if round.is_multiple_of(2) {
            let (status, _) = post(
                format!("{}/v1/certificates/{serial}/revoke", next()),
                admin.clone(),
                json!({"reason": "superseded"}),
            )
            .await;
            if status == 200 {
                acknowledged.revoked.push(serial);
            } else {
                *acknowledged.failures.entry(status).or_default() += 1;
            }
        }
    }
    acknowledged
}

/// Runs [`load_worker`]s through `urls` while `during` runs (on this thread), and
/// returns what they saw acknowledged.
fn run_load(cluster: &Cluster, urls: &[String], during: impl FnOnce()) -> Acknowledged {
    let bundle = std::fs::read(cluster.data.join("ca-bundle.pem")).unwrap();
    let admin = std::fs::read_to_string(cluster.data.join("admin.token"))
        .unwrap()
        .trim()
        .to_owned();
    let csr = p256(&["subjectAltName=DNS:load.localhost"]).csr;
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&bundle).unwrap())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..6)
        .map(|worker| {
            cluster.runtime.spawn(load_worker(
                client.clone(),
                urls.to_vec(),
                admin.clone(),
                csr.clone(),
                worker,
                Arc::clone(&stop),
            ))
        })
        .collect();
    during();
    stop.store(true, Ordering::SeqCst);
    let mut acknowledged = Acknowledged::default();
    for worker in workers {
        let part = cluster.runtime.block_on(worker).unwrap();
        acknowledged.issued.extend(part.issued);
        acknowledged.revoked.extend(part.revoked);
        for (status, count) in part.failures {
            *acknowledged.failures.entry(status).or_default() += count;
        }
    }
    eprintln!(
        "acknowledged: {} issued, {} revoked; failures by status: {:?}",
        acknowledged.issued.len(),
        acknowledged.revoked.len(),
        acknowledged.failures
    );
    acknowledged
}

/// Every acknowledged issuance has its row with the very certificate returned, every
/// acknowledged revocation is recorded, and serials are unique.
fn check_acknowledged(cluster: &Cluster, acknowledged: &Acknowledged) {
    let mut serials = HashSet::new();
    let revoked: HashSet<&String> = acknowledged.revoked.iter().collect();
    for (serial, der) in &acknowledged.issued {
        assert!(
            serials.insert(serial.clone()),
            "serial {serial} returned twice"
        );
        let record = cluster
            .runtime
            .block_on(cluster.store.certificate(serial))
            .unwrap()
            .unwrap_or_else(|| panic!("acknowledged {serial} has no row"));
        assert_eq!(record.certificate.as_deref(), Some(der.as_slice()));
        // Revoked if the revocation was acknowledged; either status otherwise (a
        // revocation may have committed on a replica that died before answering).
        if revoked.contains(serial) {
            assert_eq!(record.status, CertificateStatus::Revoked, "{serial}");
        } else {
            assert!(
                matches!(
                    record.status,
                    CertificateStatus::Issued | CertificateStatus::Revoked
                ),
                "{serial}: {:?}",
                record.status
            );
        }
    }
}

#[test]
fn three_replicas_under_load_lose_nothing_acknowledged_when_one_is_killed() {
    let Some(cluster) = Cluster::new(None) else {
        return;
    };
    // C starts first and leads the jobs, so killing it forces a takeover under load.
    let names = ["replica-c", "replica-a", "replica-b"];
    let mut replicas: HashMap<&str, Replica> = HashMap::new();
    for name in names {
        replicas.insert(name, cluster.start(name, &[]));
        if name == "replica-c" {
            cluster.wait_for_leader("crl", "replica-c", Duration::from_secs(10));
        }
    }
    let urls: Vec<String> = names.iter().map(|n| replicas[n].api.clone()).collect();
    // Load through all three, then C is killed mid-load; the load goes on.
    let mut killed_at = None;
    let acknowledged = run_load(&cluster, &urls, || {
        std::thread::sleep(Duration::from_secs(4));
        let killed = replicas.get_mut("replica-c").unwrap();
        killed.child.kill().unwrap();
        let _ = killed.child.wait();
        killed_at = Some(Instant::now());
        std::thread::sleep(Duration::from_secs(6));
    });
    let killed_at = killed_at.unwrap();
    assert!(acknowledged.issued.len() >= 30, "too little load to judge");
    // Only the dead replica's requests failed, as connection errors: no wrong answers.
    assert!(
        acknowledged.failures.keys().all(|status| *status == 0),
        "{:?}",
        acknowledged.failures
    );

    // The jobs moved to a live replica with a new fence.
    let leader = ["replica-a", "replica-b"]
        .into_iter()
        .find(|name| {
            let lease = cluster
                .runtime
                .block_on(cluster.store.job_lease("crl"))
                .unwrap()
                .unwrap();
            lease.fence.holder.starts_with(&format!("{name}/"))
        })
        .expect("the CRL job was taken over");
    eprintln!(
        "CRL job taken over by {leader} (checked {:?} after the kill)",
        killed_at.elapsed()
    );

    check_acknowledged(&cluster, &acknowledged);
    let revoked: HashSet<&String> = acknowledged.revoked.iter().collect();

    // The live leader publishes a CRL listing every acknowledged revocation.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let latest = cluster
            .runtime
            .block_on(cluster.store.latest_crl("int-server"))
            .unwrap()
            .unwrap();
        let (_, parsed) = x509_parser::parse_x509_crl(&latest.der).unwrap();
        let listed: HashSet<String> = parsed
            .iter_revoked_certificates()
            .map(|entry| hex::encode(entry.raw_serial()))
            .collect();
        if revoked.iter().all(|serial| listed.contains(*serial)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the CRL never listed every acknowledged revocation"
        );
        std::thread::sleep(Duration::from_millis(250));
    }

    // CRL numbers: each used once, and in number order the fences never go back and
    // each fence belongs to one holder: one publisher at a time.
    let publications = cluster.crl_publications(&names);
    for (scope, list) in &publications {
        let mut holders: HashMap<u64, &str> = HashMap::new();
        let mut last: Option<(u64, u64)> = None;
        for (number, _, holder, fence) in list {
            if let Some((last_number, last_fence)) = last {
                assert!(
                    *number > last_number,
                    "{scope}: CRL {number} published twice"
                );
                assert!(
                    *fence >= last_fence,
                    "{scope}: fence went back at CRL {number}"
                );
            }
            last = Some((*number, *fence));
            let owner = holders.entry(*fence).or_insert(holder);
            assert_eq!(owner, holder, "{scope}: fence {fence} used by two holders");
        }
    }
    eprintln!("CRL publications: {publications:?}");
    for name in ["replica-a", "replica-b"] {
        replicas.get_mut(name).unwrap().terminate();
    }
}

#[test]
fn replicas_under_load_ride_out_a_postgresql_restart_with_503s_only() {
    // A server of its own: this test stops it.
    let Some(server) = carimbo_store::postgres_testing::private_server() else {
        return;
    };
    let Some(cluster) = Cluster::new(Some(&server)) else {
        return;
    };
    let mut replicas: Vec<Replica> = ["replica-a", "replica-b"]
        .into_iter()
        .map(|name| cluster.start(name, &[]))
        .collect();
    let urls: Vec<String> = replicas.iter().map(|r| r.api.clone()).collect();
    let acknowledged = run_load(&cluster, &urls, || {
        std::thread::sleep(Duration::from_secs(3));
        server.stop();
        std::thread::sleep(Duration::from_secs(3));
        server.start_again();
        std::thread::sleep(Duration::from_secs(6));
    });
    // While the database was down requests got 503 database_unavailable (or, for a
    // request cut at the very moment, no answer), never another error; the same
    // processes served again afterwards.
    assert!(
        acknowledged
            .failures
            .keys()
            .all(|status| matches!(status, 0 | 503)),
        "{:?}",
        acknowledged.failures
    );
    assert!(
        acknowledged.failures.contains_key(&503),
        "the outage was not seen"
    );
    assert!(acknowledged.issued.len() >= 30, "too little load to judge");
    for replica in &mut replicas {
        assert!(
            replica.child.try_wait().unwrap().is_none(),
            "a replica exited"
        );
    }
    // Both serve again without a restart: a short load with no failure at all.
    let after = run_load(&cluster, &urls, || {
        std::thread::sleep(Duration::from_secs(2))
    });
    assert!(after.failures.is_empty(), "{:?}", after.failures);
    assert!(!after.issued.is_empty());
    // The store is reconnected too.
    cluster.runtime.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(20);
        while cluster.store.last_revocation_id().await.is_err() {
            assert!(
                Instant::now() < deadline,
                "the test's store never reconnected"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    check_acknowledged(&cluster, &acknowledged);
    for replica in &mut replicas {
        replica.terminate();
    }
}
