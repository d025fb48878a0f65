//! Unit tests of every policy rule, each allowing and denying.

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]
#![allow(clippy::field_reassign_with_default)]

use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use super::*;
use crate::report::{Claims, Window};

const NOW: OffsetDateTime = datetime!(2025-07-01 12:00 UTC);

fn window() -> Window {
    Window {
        start: datetime!(2025-06-01 0:00 UTC),
        end: datetime!(2025-08-01 0:00 UTC),
    }
}

fn bytes(n: usize, b: u8) -> Value {
    Value::Bytes(vec![b; n])
}

/// A TDX result that every default rule accepts.
fn tdx_claims() -> Claims {
    let mut c = Claims::default();
    c.measurements.insert("mr_td".into(), bytes(48, 0x11));
    c.measurements.insert("rtmr0".into(), bytes(48, 0x22));
    c.report_data = Some(vec![0xab; 64]);
    c.debug = Some(false);
    c.properties.insert("sept_ve_disable".into(), true.into());
    c.properties.insert("service_td".into(), false.into());
    c
}

fn verified(
    platform: Platform,
    claims: Claims,
    status: Option<TcbStatus>,
    advisories: Option<Vec<&str>>,
) -> Verified {
    let adv = advisories.map(|a| a.into_iter().map(String::from).collect());
    Verified::new(platform, claims, status, adv, window(), NOW)
}

fn tdx() -> Verified {
    verified(
        Platform::Tdx,
        tdx_claims(),
        Some(TcbStatus::UpToDate),
        Some(vec![]),
    )
}

fn rules(v: &Verified, p: &Policy) -> Vec<Rule> {
    let a = appraise(v, p, NOW);
    assert_eq!(a.allowed, a.reasons.is_empty());
    a.reasons.iter().map(|d| d.rule).collect()
}

#[test]
fn defaults_are_secure_and_allow_a_good_td() {
    let p = Policy::default();
    assert!(!p.allow_simulated && !p.allow_debug && p.require_sept_ve_disable);
    assert!(!p.allow_service_td && !p.allow_snp_migration_agent);
    assert_eq!(p.min_tcb_status, TcbStatus::UpToDate);
    assert_eq!(Policy::from_toml("").unwrap(), p);
    assert_eq!(rules(&tdx(), &p), vec![]);
}

#[test]
fn platforms_rule() {
    let mut p = Policy::default();
    p.platforms = Some(vec![Platform::SevSnp]);
    assert_eq!(rules(&tdx(), &p), vec![Rule::Platform]);
    p.platforms = Some(vec![Platform::SevSnp, Platform::Tdx]);
    assert_eq!(rules(&tdx(), &p), vec![]);
}

#[test]
fn simulated_forbidden_by_default() {
    let v = verified(Platform::Simulated, tdx_claims(), None, None);
    assert_eq!(rules(&v, &Policy::default()), vec![Rule::Simulated]);
    assert_eq!(rules(&v, &Policy::local_development()), vec![]);
    // Listing it in `platforms` is not enough: allow_simulated is required as well.
    let mut p = Policy::default();
    p.platforms = Some(vec![Platform::Simulated]);
    assert_eq!(rules(&v, &p), vec![Rule::Simulated]);
}

#[test]
fn debug_forbidden_by_default() {
    let mut c = tdx_claims();
    c.debug = Some(true);
    let v = verified(Platform::Tdx, c, Some(TcbStatus::UpToDate), Some(vec![]));
    assert_eq!(rules(&v, &Policy::default()), vec![Rule::Debug]);
    let mut p = Policy::default();
    p.allow_debug = true;
    assert_eq!(rules(&v, &p), vec![]);
    // Nitro debug mode is reported the same way.
    let mut c = Claims::default();
    c.debug = Some(true);
    let v = verified(Platform::Nitro, c, None, None);
    assert_eq!(rules(&v, &Policy::default()), vec![Rule::Debug]);
}

#[test]
fn sept_ve_disable_required_for_tdx() {
    let mut c = tdx_claims();
    c.properties.insert("sept_ve_disable".into(), false.into());
    let v = verified(
        Platform::Tdx,
        c.clone(),
        Some(TcbStatus::UpToDate),
        Some(vec![]),
    );
    assert_eq!(rules(&v, &Policy::default()), vec![Rule::SeptVeDisable]);
    c.properties.remove("sept_ve_disable");
    let missing = verified(
        Platform::Tdx,
        c.clone(),
        Some(TcbStatus::UpToDate),
        Some(vec![]),
    );
    assert_eq!(
        rules(&missing, &Policy::default()),
        vec![Rule::SeptVeDisable]
    );
    let mut p = Policy::default();
    p.require_sept_ve_disable = false;
    assert_eq!(rules(&v, &p), vec![]);
    assert_eq!(rules(&missing, &p), vec![]);
    // Not a TDX rule for other platforms.
    let snp = verified(Platform::SevSnp, Claims::default(), None, None);
    assert_eq!(rules(&snp, &Policy::default()), vec![]);
}

#[test]
fn service_td_forbidden_by_default() {
    let mut c = tdx_claims();
    c.properties.insert("service_td".into(), true.into());
    let v = verified(Platform::Tdx, c, Some(TcbStatus::UpToDate), Some(vec![]));
    assert_eq!(rules(&v, &Policy::default()), vec![Rule::ServiceTd]);
    let mut p = Policy::default();
    p.allow_service_td = true;
    assert_eq!(rules(&v, &p), vec![]);
}

#[test]
fn snp_migration_agent_and_vmpl() {
    let mut c = Claims::default();
    c.properties.insert("migration_agent".into(), true.into());
    c.properties.insert("vmpl".into(), 2.into());
    let v = verified(Platform::SevSnp, c, None, None);
    assert_eq!(rules(&v, &Policy::default()), vec![Rule::MigrationAgent]);
    let mut p = Policy::default();
    p.allow_snp_migration_agent = true;
    assert_eq!(rules(&v, &p), vec![]);
    p.snp_max_vmpl = Some(0);
    assert_eq!(rules(&v, &p), vec![Rule::Vmpl]);
    p.snp_max_vmpl = Some(2);
    assert_eq!(rules(&v, &p), vec![]);
    let no_vmpl = verified(Platform::SevSnp, Claims::default(), None, None);
    assert_eq!(rules(&no_vmpl, &p), vec![Rule::Vmpl]);
}

#[test]
fn tcb_status_minimum() {
    let v = verified(
        Platform::Sgx,
        Claims::default(),
        Some(TcbStatus::SwHardeningNeeded),
        Some(vec![]),
    );
    assert_eq!(rules(&v, &Policy::default()), vec![Rule::TcbStatus]);
    let p = Policy::from_toml(r#"min_tcb_status = "SWHardeningNeeded""#).unwrap();
    assert_eq!(rules(&v, &p), vec![]);
    let out = verified(
        Platform::Sgx,
        Claims::default(),
        Some(TcbStatus::OutOfDate),
        Some(vec![]),
    );
    assert_eq!(rules(&out, &p), vec![Rule::TcbStatus]);
    let p = Policy::from_toml(r#"min_tcb_status = "OutOfDate""#).unwrap();
    assert_eq!(rules(&out, &p), vec![]);
    // Platforms without a TCB status are not affected.
    let nitro = verified(Platform::Nitro, Claims::default(), None, None);
    assert_eq!(rules(&nitro, &Policy::default()), vec![]);
}

#[test]
fn advisory_allow_list() {
    let v = verified(
        Platform::Sgx,
        Claims::default(),
        Some(TcbStatus::UpToDate),
        Some(vec!["INTEL-SA-00289", "INTEL-SA-00615"]),
    );
    // Unrestricted by default.
    assert_eq!(rules(&v, &Policy::default()), vec![]);
    let p = Policy::from_toml(r#"allowed_advisory_ids = ["INTEL-SA-00615"]"#).unwrap();
    let a = appraise(&v, &p, NOW);
    assert_eq!(
        a.reasons.iter().map(|d| d.rule).collect::<Vec<_>>(),
        vec![Rule::Advisories]
    );
    assert!(a.reasons[0].message.contains("INTEL-SA-00289"));
    let p = Policy::from_toml(r#"allowed_advisory_ids = ["INTEL-SA-00615", "INTEL-SA-00289"]"#)
        .unwrap();
    assert_eq!(rules(&v, &p), vec![]);
}

#[test]
fn measurement_allow_list_by_fields() {
    let p = Policy::from_toml(&format!(
        "[[measurements.tdx]]\nmr_td = \"{}\"\n[[measurements.tdx]]\nmr_td = \"{}\"\nrtmr0 = \"{}\"\n",
        "33".repeat(48),
        "11".repeat(48),
        "22".repeat(48)
    ))
    .unwrap();
    assert_eq!(rules(&tdx(), &p), vec![]);
    // One field off in the only entry that names mr_td = 11..: denied.
    let p2 = Policy::from_toml(&format!(
        "[[measurements.tdx]]\nmr_td = \"{}\"\nrtmr0 = \"{}\"\n",
        "11".repeat(48),
        "23".repeat(48)
    ))
    .unwrap();
    assert_eq!(rules(&tdx(), &p2), vec![Rule::Measurement]);
    // A field the evidence does not report never matches (fail closed).
    let p3 = Policy::from_toml(&format!(
        "[[measurements.tdx]]\nmr_td = \"{}\"\nrtmr9 = \"00\"\n",
        "11".repeat(48)
    ))
    .unwrap();
    assert_eq!(rules(&tdx(), &p3), vec![Rule::Measurement]);
    // Entries for another platform only: this platform has no allowed measurement.
    let p4 = Policy::from_toml("[[measurements.sev-snp]]\nmeasurement = \"00\"\n").unwrap();
    assert_eq!(rules(&tdx(), &p4), vec![Rule::Measurement]);
}

#[test]
fn measurement_allow_list_by_hash_and_text() {
    let v = tdx();
    let h = hex::encode(measurement_hash(&v));
    let p = Policy::from_toml(&format!("measurement_hashes = [\"{h}\"]")).unwrap();
    assert_eq!(rules(&v, &p), vec![]);
    let p = Policy::from_toml(&format!(
        "[[measurements.tdx]]\nmeasurement_hash = \"0x{h}\"\n"
    ))
    .unwrap();
    assert_eq!(rules(&v, &p), vec![]);
    let other = "00".repeat(32);
    let p = Policy::from_toml(&format!("measurement_hashes = [\"{other}\"]")).unwrap();
    assert_eq!(rules(&v, &p), vec![Rule::Measurement]);
    // The same fields on another platform hash differently.
    let sim = verified(Platform::Simulated, tdx_claims(), None, None);
    let p = Policy {
        allow_simulated: true,
        measurement_hashes: vec![h],
        ..Policy::default()
    };
    assert_eq!(rules(&sim, &p), vec![Rule::Measurement]);
    // Text values (NVIDIA driver version) compare as text.
    let mut c = Claims::default();
    c.measurements
        .insert("driver_version".into(), Value::Text("550.90.07".into()));
    let gpu = verified(Platform::NvidiaGpu, c, None, None);
    let p =
        Policy::from_toml("[[measurements.nvidia-gpu]]\ndriver_version = \"550.90.07\"\n").unwrap();
    assert_eq!(rules(&gpu, &p), vec![]);
    let p =
        Policy::from_toml("[[measurements.nvidia-gpu]]\ndriver_version = \"535.86.10\"\n").unwrap();
    assert_eq!(rules(&gpu, &p), vec![Rule::Measurement]);
}

#[test]
fn nonce_rule() {
    let mut c = Claims::default();
    c.nonce = Some(vec![1, 2, 3, 4]);
    let v = verified(Platform::Nitro, c, None, None);
    let p = Policy::from_toml(r#"expected_nonce = "01020304""#).unwrap();
    assert_eq!(rules(&v, &p), vec![]);
    let p = Policy::from_toml(r#"expected_nonce = "01020305""#).unwrap();
    assert_eq!(rules(&v, &p), vec![Rule::Nonce]);
    // SGX/TDX/SNP carry no nonce field: a nonce policy cannot be met that way.
    assert_eq!(rules(&tdx(), &p), vec![Rule::Nonce]);
}

#[test]
fn report_data_binding() {
    let p = Policy::from_toml(&format!("expected_report_data = \"{}\"", "ab".repeat(32))).unwrap();
    assert_eq!(rules(&tdx(), &p), vec![]);
    let p = Policy::from_toml(&format!("expected_report_data = \"{}\"", "ab".repeat(64))).unwrap();
    assert_eq!(rules(&tdx(), &p), vec![]);
    let p =
        Policy::from_toml(&format!("expected_report_data = \"{}cd\"", "ab".repeat(31))).unwrap();
    assert_eq!(rules(&tdx(), &p), vec![Rule::ReportData]);
    // Nitro: user_data is the report data.
    let mut c = Claims::default();
    c.user_data = Some(b"hello".to_vec());
    let v = verified(Platform::Nitro, c, None, None);
    let p = Policy::from_toml(&format!(
        "expected_report_data = \"{}\"",
        hex::encode(b"hello")
    ))
    .unwrap();
    assert_eq!(rules(&v, &p), vec![]);
    let none = verified(Platform::Nitro, Claims::default(), None, None);
    assert_eq!(rules(&none, &p), vec![Rule::ReportData]);
}

#[test]
fn max_age_where_timestamped() {
    let ts_ms = |t: OffsetDateTime| u64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap();
    let nitro_at = |t: OffsetDateTime| {
        let mut c = Claims::default();
        c.properties.insert("timestamp".into(), ts_ms(t).into());
        verified(Platform::Nitro, c, None, None)
    };
    let p = Policy::from_toml("max_age_seconds = 300").unwrap();
    assert_eq!(rules(&nitro_at(NOW - Duration::seconds(299)), &p), vec![]);
    assert_eq!(
        rules(&nitro_at(NOW - Duration::seconds(301)), &p),
        vec![Rule::MaxAge]
    );
    assert_eq!(
        rules(&nitro_at(NOW + Duration::seconds(5)), &p),
        vec![Rule::MaxAge]
    );
    // No timestamp (SGX/TDX/SNP): not affected.
    assert_eq!(rules(&tdx(), &p), vec![]);
    // Simulated evidence stamps Unix seconds.
    let sim_at = |t: OffsetDateTime| {
        let mut c = tdx_claims();
        c.properties
            .insert("timestamp".into(), t.unix_timestamp().into());
        verified(Platform::Simulated, c, None, None)
    };
    let p = Policy {
        allow_simulated: true,
        max_age_seconds: Some(60),
        ..Policy::default()
    };
    assert_eq!(rules(&sim_at(NOW - Duration::seconds(59)), &p), vec![]);
    assert_eq!(
        rules(&sim_at(NOW - Duration::seconds(61)), &p),
        vec![Rule::MaxAge]
    );
}

#[test]
fn window_rule() {
    let v = tdx();
    assert!(appraise(&v, &Policy::default(), NOW).allowed);
    let late = appraise(&v, &Policy::default(), datetime!(2025-08-02 0:00 UTC));
    assert_eq!(
        late.reasons.iter().map(|d| d.rule).collect::<Vec<_>>(),
        vec![Rule::Window]
    );
    let before_verification = appraise(&v, &Policy::default(), NOW - Duration::seconds(1));
    assert_eq!(
        before_verification
            .reasons
            .iter()
            .map(|d| d.rule)
            .collect::<Vec<_>>(),
        vec![Rule::Window]
    );
}

#[test]
fn all_failing_rules_are_reported() {
    let mut c = tdx_claims();
    c.debug = Some(true);
    c.properties.insert("sept_ve_disable".into(), false.into());
    let v = verified(
        Platform::Tdx,
        c,
        Some(TcbStatus::OutOfDate),
        Some(vec!["INTEL-SA-00960"]),
    );
    let p = Policy::from_toml("allowed_advisory_ids = []").unwrap();
    assert_eq!(
        rules(&v, &p),
        vec![
            Rule::Debug,
            Rule::SeptVeDisable,
            Rule::TcbStatus,
            Rule::Advisories
        ]
    );
    let a = appraise(&v, &p, NOW);
    assert!(a.reasons[0].to_string().starts_with("debug: "));
}

#[test]
fn parse_errors() {
    // Misspelt keys are errors, not silently ignored.
    assert!(matches!(
        Policy::from_toml("alow_debug = true"),
        Err(PolicyError::Parse(_))
    ));
    assert!(matches!(
        Policy::from_toml("allow_debug = \"yes\""),
        Err(PolicyError::Parse(_))
    ));
    assert!(matches!(
        Policy::from_toml("min_tcb_status = \"Great\""),
        Err(PolicyError::Parse(_))
    ));
    assert!(matches!(
        Policy::from_toml("[[measurements.amiga]]\nx = \"00\""),
        Err(PolicyError::Parse(_))
    ));
    assert!(matches!(
        Policy::from_toml("[[measurements.tdx]]\n"),
        Err(PolicyError::Invalid { .. })
    ));
    assert!(matches!(
        Policy::from_toml("[[measurements.tdx]]\nmeasurement_hash = \"00\""),
        Err(PolicyError::Invalid { .. })
    ));
    assert!(matches!(
        Policy::from_toml("measurement_hashes = [\"zz\"]"),
        Err(PolicyError::Invalid { .. })
    ));
    assert!(matches!(
        Policy::from_toml("expected_nonce = \"\""),
        Err(PolicyError::Invalid { .. })
    ));
    assert!(matches!(
        Policy::from_toml(&format!("expected_report_data = \"{}\"", "00".repeat(65))),
        Err(PolicyError::Invalid { .. })
    ));
    assert!(matches!(
        Policy::from_toml("[[measurements.tdx]]\n\"MR TD\" = \"00\""),
        Err(PolicyError::Invalid { .. })
    ));
}

#[test]
fn full_policy_file_round_trips() {
    let text = r#"
        platforms = ["tdx", "sev-snp", "simulated"]
        allow_simulated = true
        allow_debug = false
        require_sept_ve_disable = true
        min_tcb_status = "SWHardeningNeeded"
        allowed_advisory_ids = ["INTEL-SA-00615"]
        snp_max_vmpl = 0
        expected_report_data = "abab"
        max_age_seconds = 600
        measurement_hashes = []

        [[measurements.tdx]]
        mr_td = "11"

        [[measurements.simulated]]
        mr_td = "11"
    "#;
    let p = Policy::from_toml(text).unwrap();
    assert_eq!(p.platforms.as_ref().unwrap().len(), 3);
    assert_eq!(p.measurements.len(), 2);
    let again = Policy::from_toml(&toml::to_string(&p).unwrap()).unwrap();
    assert_eq!(again, p);
}
