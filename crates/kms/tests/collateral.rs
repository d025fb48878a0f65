//! The KMS verifies hardware evidence with the collateral its `CollateralSource` supplies:
//! a real TDX quote (the corpus's `tdx-t1-uptodate`, from real hardware) with no collateral
//! is refused as missing collateral; with the case's collateral it verifies as far as the
//! `report_data` binding (a quote from elsewhere cannot carry this KMS's binding), which is
//! where a worker's real quote would pass.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use pith_attest::provider::{SimulatedOptions, SimulatedSource};
use pith_kms::evidence::Attester;

fn case() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/attestation/tdx-t1-uptodate")
}

fn at() -> time::OffsetDateTime {
    let expect: serde_json::Value =
        serde_json::from_slice(&std::fs::read(case().join("expect.json")).unwrap()).unwrap();
    time::OffsetDateTime::parse(
        expect["at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap()
}

fn attester(collateral: Arc<dyn pith_attest::CollateralSource>) -> (tempfile::TempDir, Attester) {
    let dir = tempfile::tempdir().unwrap();
    let opts = SimulatedOptions {
        dev_ca_dir: dir.path().to_owned(),
        create: true,
        ..Default::default()
    };
    let source = SimulatedSource::open(&opts).unwrap();
    (dir, Attester::new(Arc::new(source), None, collateral))
}

#[test]
fn hardware_evidence_is_verified_with_the_sources_collateral() {
    let quote = std::fs::read(case().join("evidence.bin")).unwrap();
    let expected = [0x5a; 64];

    let (_d, none) = attester(Arc::new(pith_attest::NoCollateral));
    let e = none
        .verify_at(&quote, &expected, at())
        .unwrap_err()
        .to_string();
    assert!(e.contains("collateral"), "without collateral: {e}");

    let fixed = pith_attest::FixedCollateral::from_dir(&case().join("collateral")).unwrap();
    let (_d, with) = attester(Arc::new(fixed));
    let e = with
        .verify_at(&quote, &expected, at())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("report_data does not bind"),
        "with the case's collateral the quote verifies up to the binding: {e}"
    );

    // and the collateral is really checked: a day after it expired, refused.
    let late = at() + time::Duration::days(400);
    let e = with
        .verify_at(&quote, &expected, late)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("evidence does not verify"),
        "expired collateral: {e}"
    );
}
