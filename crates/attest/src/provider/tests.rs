#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
#![allow(clippy::arithmetic_side_effects)]

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::*;
use crate::{Collateral, Evidence, VerifyOptions};

const RD: [u8; 64] = {
    let mut a = [0u8; 64];
    let mut i = 0;
    while i < 64 {
        a[i] = i as u8 ^ 0xa5;
        i += 1;
    }
    a
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Blob {
    /// A well-formed blob carrying the inblob.
    Good,
    /// Only `n` bytes (short read / truncated report).
    Short(usize),
    /// Well-formed but carrying other report data (stale / someone else's).
    Foreign,
}

/// A fake kernel: real files in a temp dir plus the side effects configfs-tsm has.
#[derive(Debug)]
struct FakeTsm {
    report_dir: PathBuf,
    provider: Option<&'static str>,
    tdx_version: u16,
    blob: Blob,
    /// Number of attempts during which a concurrent writer bumps `generation`.
    races: Mutex<u32>,
    /// Operation (`mkdir`, `inblob`, `outblob`) failing with EACCES.
    deny: Option<&'static str>,
    log: Mutex<Vec<String>>,
}

impl FakeTsm {
    fn new(root: &Path, provider: Option<&'static str>) -> Self {
        let report_dir = Paths::under(root).tsm_report;
        std::fs::create_dir_all(&report_dir).unwrap();
        Self {
            report_dir,
            provider,
            tdx_version: 4,
            blob: Blob::Good,
            races: Mutex::new(0),
            deny: None,
            log: Mutex::default(),
        }
    }
    fn bump(path: &Path) {
        let g: u64 = std::fs::read_to_string(path)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        std::fs::write(path, format!("{}\n", g + 1)).unwrap();
    }
    fn denied(&self, op: &str) -> io::Result<()> {
        if self.deny == Some(op) {
            Err(io::Error::from(io::ErrorKind::PermissionDenied))
        } else {
            Ok(())
        }
    }
    fn make_blob(&self, inblob: &[u8]) -> Vec<u8> {
        let mut rd = inblob.to_vec();
        if self.blob == Blob::Foreign {
            rd = vec![0xee; 64];
        }
        let mut out = match self.provider {
            Some("sev_guest") => {
                let mut r = vec![0u8; 1184];
                r[0x50..0x90].copy_from_slice(&rd);
                r
            }
            _ => {
                let mut q = vec![0u8; 48 + 6 + 584 + 4 + 100];
                q[..2].copy_from_slice(&self.tdx_version.to_le_bytes());
                let at = if self.tdx_version == 5 { 574 } else { 568 };
                q[at..at + 64].copy_from_slice(&rd);
                q
            }
        };
        if let Blob::Short(n) = self.blob {
            out.truncate(n);
        }
        out
    }
    fn entries(&self) -> usize {
        std::fs::read_dir(&self.report_dir).unwrap().count()
    }
}

impl Fs for FakeTsm {
    fn create_dir(&self, path: &Path) -> io::Result<()> {
        self.denied("mkdir")?;
        std::fs::create_dir(path)?;
        self.log.lock().unwrap().push(format!(
            "mkdir {}",
            path.file_name().unwrap().to_string_lossy()
        ));
        if let Some(p) = self.provider {
            std::fs::write(path.join("provider"), format!("{p}\n"))?;
        }
        std::fs::write(path.join("generation"), "0\n")?;
        std::fs::write(path.join("inblob"), b"")?;
        std::fs::write(path.join("outblob"), b"")?;
        Ok(())
    }
    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        self.log.lock().unwrap().push("rmdir".into());
        std::fs::remove_dir_all(path)
    }
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let name = path.file_name().unwrap().to_str().unwrap();
        if name == "outblob" {
            self.denied("outblob")?;
            let dir = path.parent().unwrap();
            let inblob = std::fs::read(dir.join("inblob"))?;
            std::fs::write(path, self.make_blob(&inblob))?;
            let mut races = self.races.lock().unwrap();
            if *races > 0 {
                *races -= 1;
                // Another process writes inblob of the same entry meanwhile.
                Self::bump(&dir.join("generation"));
            }
        }
        OsFs.read(path)
    }
    fn write(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        if path.file_name().unwrap() == "inblob" {
            self.denied("inblob")?;
            std::fs::write(path, data)?;
            Self::bump(&path.parent().unwrap().join("generation"));
            return Ok(());
        }
        OsFs.write(path, data)
    }
    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }
    fn is_dir(&self, path: &Path) -> bool {
        path.is_dir()
    }
}

fn tsm(fake: FakeTsm) -> (Arc<FakeTsm>, Result<TsmSource, ProviderError>) {
    let fake = Arc::new(fake);
    let dir = fake.report_dir.clone();
    let src = TsmSource::open(fake.clone(), &dir);
    (fake, src)
}

#[test]
fn tsm_tdx_quote_round_trip() {
    let root = tempfile::tempdir().unwrap();
    let (fake, src) = tsm(FakeTsm::new(root.path(), Some("tdx_guest")));
    let src = src.unwrap();
    assert_eq!(src.platform(), Platform::Tdx);
    let q = src.quote(&RD).unwrap();
    assert_eq!(&q[568..632], &RD);
    let r = src.report(&RD).unwrap();
    assert_eq!(r.auxblob, None);
    // Every entry (probe + 2 reports) was removed.
    assert_eq!(fake.entries(), 0);
    let log = fake.log.lock().unwrap();
    assert_eq!(log.iter().filter(|l| l.starts_with("mkdir")).count(), 3);
    assert_eq!(log.iter().filter(|l| *l == "rmdir").count(), 3);
}

#[test]
fn tsm_tdx_v5_quote() {
    let root = tempfile::tempdir().unwrap();
    let mut f = FakeTsm::new(root.path(), Some("tdx_guest"));
    f.tdx_version = 5;
    let (_fake, src) = tsm(f);
    assert_eq!(&src.unwrap().quote(&RD).unwrap()[574..638], &RD);
}

#[test]
fn tsm_unknown_tdx_quote_version() {
    let root = tempfile::tempdir().unwrap();
    let mut f = FakeTsm::new(root.path(), Some("tdx_guest"));
    f.tdx_version = 3;
    let (_fake, src) = tsm(f);
    assert!(matches!(
        src.unwrap().quote(&RD),
        Err(ProviderError::Unexpected {
            what: "TDX quote version",
            ..
        })
    ));
}

#[test]
fn tsm_sev_snp_report_with_auxblob() {
    let root = tempfile::tempdir().unwrap();
    let (fake, src) = tsm(FakeTsm::new(root.path(), Some("sev_guest")));
    let src = src.unwrap();
    assert_eq!(src.platform(), Platform::SevSnp);
    let q = src.quote(&RD).unwrap();
    assert_eq!(q.len(), 1184);
    assert_eq!(&q[0x50..0x90], &RD);
    assert_eq!(fake.entries(), 0);
}

#[test]
fn tsm_missing_and_unknown_provider() {
    let root = tempfile::tempdir().unwrap();
    let (fake, src) = tsm(FakeTsm::new(root.path(), None));
    assert!(matches!(src, Err(ProviderError::MissingProvider(_))));
    assert_eq!(fake.entries(), 0, "probe entry removed");
    let root = tempfile::tempdir().unwrap();
    let (_f, src) = tsm(FakeTsm::new(root.path(), Some("")));
    assert!(matches!(src, Err(ProviderError::MissingProvider(_))));
    let root = tempfile::tempdir().unwrap();
    let (_f, src) = tsm(FakeTsm::new(root.path(), Some("arm_cca_guest")));
    assert!(matches!(src, Err(ProviderError::UnknownProvider(p)) if p == "arm_cca_guest"));
}

#[test]
fn tsm_generation_race_is_retried_then_fails() {
    let root = tempfile::tempdir().unwrap();
    let f = FakeTsm::new(root.path(), Some("tdx_guest"));
    *f.races.lock().unwrap() = 2;
    let (fake, src) = tsm(f);
    // Two racing attempts, the third succeeds.
    let q = src.unwrap().quote(&RD).unwrap();
    assert_eq!(&q[568..632], &RD);
    assert_eq!(fake.entries(), 0);

    let root = tempfile::tempdir().unwrap();
    let f = FakeTsm::new(root.path(), Some("tdx_guest"));
    *f.races.lock().unwrap() = 100;
    let (fake, src) = tsm(f);
    match src.unwrap().quote(&RD) {
        Err(ProviderError::GenerationChanged {
            before: 0,
            after: 2,
            expected: 1,
            attempts: 3,
        }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(fake.entries(), 0);
}

#[test]
fn tsm_short_and_empty_outblob() {
    for (provider, n) in [
        ("tdx_guest", 0),
        ("tdx_guest", 100),
        ("tdx_guest", 635),
        ("sev_guest", 0),
        ("sev_guest", 1183),
    ] {
        let root = tempfile::tempdir().unwrap();
        let mut f = FakeTsm::new(root.path(), Some(provider));
        f.blob = Blob::Short(n);
        let (_f, src) = tsm(f);
        match src.unwrap().quote(&RD) {
            Err(ProviderError::ShortEvidence { len, .. }) => assert_eq!(len, n),
            other => panic!("{provider} {n}: {other:?}"),
        }
    }
    // A v5 quote must be long enough for the v5 layout.
    let root = tempfile::tempdir().unwrap();
    let mut f = FakeTsm::new(root.path(), Some("tdx_guest"));
    f.tdx_version = 5;
    f.blob = Blob::Short(640);
    let (_f, src) = tsm(f);
    assert!(matches!(
        src.unwrap().quote(&RD),
        Err(ProviderError::ShortEvidence { min: 642, .. })
    ));
}

#[test]
fn tsm_foreign_report_data_is_rejected() {
    for provider in ["tdx_guest", "sev_guest"] {
        let root = tempfile::tempdir().unwrap();
        let mut f = FakeTsm::new(root.path(), Some(provider));
        f.blob = Blob::Foreign;
        let (_f, src) = tsm(f);
        assert!(matches!(
            src.unwrap().quote(&RD),
            Err(ProviderError::ReportDataMismatch(_))
        ));
    }
}

#[test]
fn tsm_permission_errors_keep_their_kind_and_clean_up() {
    for op in ["mkdir", "inblob", "outblob"] {
        let root = tempfile::tempdir().unwrap();
        let mut f = FakeTsm::new(root.path(), Some("tdx_guest"));
        f.deny = Some(op);
        let fake = Arc::new(f);
        let dir = fake.report_dir.clone();
        let r = if op == "mkdir" {
            TsmSource::open(fake.clone(), &dir).map(|_| ())
        } else {
            TsmSource::open(fake.clone(), &dir)
                .unwrap()
                .quote(&RD)
                .map(|_| ())
        };
        match r {
            Err(ProviderError::Io { source, .. }) => {
                assert_eq!(source.kind(), io::ErrorKind::PermissionDenied, "{op}")
            }
            other => panic!("{op}: {other:?}"),
        }
        assert_eq!(fake.entries(), 0, "{op}: entry removed");
    }
}

#[test]
fn tsm_with_real_files_and_no_kernel_is_missing_provider() {
    // OsFs over a plain directory: mkdir works but no attributes appear (as with configfs
    // mounted and no TSM driver), so there is no provider.
    let root = tempfile::tempdir().unwrap();
    let dir = Paths::under(root.path()).tsm_report;
    std::fs::create_dir_all(&dir).unwrap();
    assert!(matches!(
        TsmSource::open(Arc::new(OsFs), &dir),
        Err(ProviderError::MissingProvider(_))
    ));
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
}

/// Fake Gramine: `quote` is regenerated when `user_report_data` is written.
#[derive(Debug)]
struct FakeGramine {
    blob: Blob,
    version: u16,
}

impl Fs for FakeGramine {
    fn create_dir(&self, path: &Path) -> io::Result<()> {
        OsFs.create_dir(path)
    }
    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        OsFs.remove_dir(path)
    }
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        OsFs.read(path)
    }
    fn write(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        std::fs::write(path, data)?;
        if path.file_name().unwrap() == "user_report_data" {
            let rd = if self.blob == Blob::Foreign {
                vec![0xee; 64]
            } else {
                data.to_vec()
            };
            let mut q = vec![0u8; 48 + 384 + 4 + 1000];
            q[..2].copy_from_slice(&self.version.to_le_bytes());
            q[368..432].copy_from_slice(&rd);
            if let Blob::Short(n) = self.blob {
                q.truncate(n);
            }
            std::fs::write(path.with_file_name("quote"), q)?;
        }
        Ok(())
    }
    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }
    fn is_dir(&self, path: &Path) -> bool {
        path.is_dir()
    }
}

fn gramine_tree(root: &Path, kind: &str) -> PathBuf {
    let dir = Paths::under(root).gramine;
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("attestation_type"), kind).unwrap();
    std::fs::write(dir.join("user_report_data"), [0u8; 64]).unwrap();
    std::fs::write(dir.join("quote"), b"").unwrap();
    dir
}

#[test]
fn gramine_quote_round_trip_and_checks() {
    let root = tempfile::tempdir().unwrap();
    let dir = gramine_tree(root.path(), "dcap");
    let ok = GramineSource::open(
        Arc::new(FakeGramine {
            blob: Blob::Good,
            version: 3,
        }),
        &dir,
    )
    .unwrap();
    assert_eq!(ok.platform(), Platform::Sgx);
    assert_eq!(&ok.quote(&RD).unwrap()[368..432], &RD);
    assert_eq!(std::fs::read(dir.join("user_report_data")).unwrap(), RD);

    let short = GramineSource::open(
        Arc::new(FakeGramine {
            blob: Blob::Short(435),
            version: 3,
        }),
        &dir,
    )
    .unwrap();
    assert!(matches!(
        short.quote(&RD),
        Err(ProviderError::ShortEvidence {
            len: 435,
            min: 436,
            ..
        })
    ));
    let empty = GramineSource::open(
        Arc::new(FakeGramine {
            blob: Blob::Short(0),
            version: 3,
        }),
        &dir,
    )
    .unwrap();
    assert!(matches!(
        empty.quote(&RD),
        Err(ProviderError::ShortEvidence { len: 0, .. })
    ));
    let foreign = GramineSource::open(
        Arc::new(FakeGramine {
            blob: Blob::Foreign,
            version: 3,
        }),
        &dir,
    )
    .unwrap();
    assert!(matches!(
        foreign.quote(&RD),
        Err(ProviderError::ReportDataMismatch(_))
    ));
    let v4 = GramineSource::open(
        Arc::new(FakeGramine {
            blob: Blob::Good,
            version: 4,
        }),
        &dir,
    )
    .unwrap();
    assert!(matches!(
        v4.quote(&RD),
        Err(ProviderError::Unexpected {
            what: "SGX quote version",
            ..
        })
    ));
}

#[test]
fn gramine_attestation_type_must_be_dcap() {
    for kind in ["none", "epid", ""] {
        let root = tempfile::tempdir().unwrap();
        let dir = gramine_tree(root.path(), kind);
        assert!(
            matches!(GramineSource::open(Arc::new(OsFs), &dir), Err(ProviderError::AttestationType(k)) if k == kind)
        );
    }
    // Trailing newline tolerated.
    let root = tempfile::tempdir().unwrap();
    let dir = gramine_tree(root.path(), "dcap\n");
    GramineSource::open(Arc::new(OsFs), &dir).unwrap();
}

#[test]
fn gramine_with_real_files() {
    // OsFs over static files: the written report data lands in user_report_data; a quote
    // that does not carry it is rejected, one that does is returned.
    let root = tempfile::tempdir().unwrap();
    let dir = gramine_tree(root.path(), "dcap");
    let src = GramineSource::open(Arc::new(OsFs), &dir).unwrap();
    let mut q = vec![0u8; 600];
    q[0] = 3;
    std::fs::write(dir.join("quote"), &q).unwrap();
    assert!(matches!(
        src.quote(&RD),
        Err(ProviderError::ReportDataMismatch(_))
    ));
    assert_eq!(std::fs::read(dir.join("user_report_data")).unwrap(), RD);
    q[368..432].copy_from_slice(&RD);
    std::fs::write(dir.join("quote"), &q).unwrap();
    assert_eq!(src.quote(&RD).unwrap(), q);
    // Missing quote file: an I/O error naming the path.
    std::fs::remove_file(dir.join("quote")).unwrap();
    match src.quote(&RD) {
        Err(ProviderError::Io {
            op: "read", path, ..
        }) => assert!(path.ends_with("quote")),
        other => panic!("{other:?}"),
    }
}

fn sim_options(dir: &Path) -> SimulatedOptions {
    SimulatedOptions {
        dev_ca_dir: dir.to_path_buf(),
        create: true,
        config: b"cfg".to_vec(),
        ..SimulatedOptions::default()
    }
}

#[test]
fn simulated_source_evidence_verifies_with_current_exe_measurement() {
    let root = tempfile::tempdir().unwrap();
    let ca_dir = root.path().join(".pith");
    let src = SimulatedSource::open(&sim_options(&ca_dir)).unwrap();
    assert_eq!(src.platform(), Platform::Simulated);
    let ev = src.quote(&RD).unwrap();
    let mut o = VerifyOptions::default();
    o.dev_ca = Some(std::fs::read(ca_dir.join("dev-ca.pem")).unwrap());
    let v = crate::verify(
        &Evidence::new(Platform::Simulated, ev),
        &Collateral::default(),
        &o,
        time::OffsetDateTime::now_utc(),
    )
    .unwrap();
    assert_eq!(v.report_data(), Some(&RD[..]));
    let exe = crate::simulated::current_exe_sha384().unwrap();
    let config_id: [u8; 48] = <sha2::Sha384 as sha2::Digest>::digest(b"cfg").into();
    let m = serde_json::to_value(v.measurements()).unwrap();
    assert_eq!(m["binary_sha384"], hex::encode(exe));
    assert_eq!(
        m["mr_td"],
        hex::encode(crate::simulated::mr_td(&exe, &config_id))
    );
    assert_eq!(m["mr_td"], hex::encode(src.mr_td()));
}

#[test]
fn simulated_source_without_ca_and_without_create_fails() {
    let root = tempfile::tempdir().unwrap();
    let mut o = sim_options(&root.path().join("none"));
    o.create = false;
    assert!(matches!(
        SimulatedSource::open(&o),
        Err(ProviderError::DevCa(_))
    ));
}

#[test]
fn detect_prefers_real_interfaces() {
    // Nothing present, no dev CA: a clear error.
    let root = tempfile::tempdir().unwrap();
    let opts = DetectOptions {
        paths: Paths::under(root.path()),
        simulated: None,
    };
    match detect(&opts) {
        Err(ProviderError::NoSource(msg)) => assert!(msg.contains("no development CA"), "{msg}"),
        other => panic!("{:?}", other.map(|s| s.platform())),
    }
    // Nothing present, dev CA configured: simulated.
    let with_sim = DetectOptions {
        paths: Paths::under(root.path()),
        simulated: Some(sim_options(&root.path().join(".pith"))),
    };
    assert_eq!(detect(&with_sim).unwrap().platform(), Platform::Simulated);

    // configfs-tsm without a provider is skipped; Gramine present wins.
    let tsm_dir = Paths::under(root.path()).tsm_report;
    std::fs::create_dir_all(&tsm_dir).unwrap();
    gramine_tree(root.path(), "dcap");
    assert_eq!(detect(&with_sim).unwrap().platform(), Platform::Sgx);

    // configfs-tsm with a provider wins over everything.
    let fake: Arc<dyn Fs> = Arc::new(FakeTsm::new(root.path(), Some("sev_guest")));
    assert_eq!(
        detect_with(&with_sim, fake).unwrap().platform(),
        Platform::SevSnp
    );

    // A Gramine tree that is not DCAP is an error, not a silent fallback to simulated.
    std::fs::write(
        Paths::under(root.path()).gramine.join("attestation_type"),
        "none",
    )
    .unwrap();
    assert!(matches!(
        detect(&with_sim),
        Err(ProviderError::AttestationType(_))
    ));
}

#[test]
fn detect_nitro_device() {
    let root = tempfile::tempdir().unwrap();
    let paths = Paths::under(root.path());
    std::fs::create_dir_all(paths.nsm.parent().unwrap()).unwrap();
    std::fs::write(&paths.nsm, b"").unwrap();
    let opts = DetectOptions {
        paths,
        simulated: Some(sim_options(&root.path().join(".pith"))),
    };
    #[cfg(not(feature = "nsm"))]
    assert!(matches!(detect(&opts), Err(ProviderError::NsmNotBuilt(_))));
    #[cfg(feature = "nsm")]
    {
        let src = detect(&opts).unwrap();
        assert_eq!(src.platform(), Platform::Nitro);
        // A regular file is not the NSM: the ioctl fails and the error says so.
        assert!(matches!(src.quote(&RD), Err(ProviderError::Nsm(_))));
    }
}

#[cfg(feature = "nsm")]
#[test]
fn nsm_request_and_missing_device() {
    use aws_nitro_enclaves_nsm_api::api::Request;
    match NsmSource::request(&RD) {
        Request::Attestation {
            user_data: Some(u),
            nonce: None,
            public_key: None,
        } => assert_eq!(u.as_slice(), &RD),
        other => panic!("{other:?}"),
    }
    let root = tempfile::tempdir().unwrap();
    let src = NsmSource::new(&root.path().join("nsm"));
    assert!(matches!(
        src.quote(&RD),
        Err(ProviderError::Io { op: "open", .. })
    ));
}
