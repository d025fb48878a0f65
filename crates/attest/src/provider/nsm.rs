//! Nitro Enclaves evidence from the Nitro Secure Module through the
//! `aws-nitro-enclaves-nsm-api` crate (an ioctl on the NSM device). The 64-byte
//! `report_data` goes into the attestation document's `user_data`.

use std::fs::OpenOptions;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use aws_nitro_enclaves_nsm_api::api::{Request, Response};
use aws_nitro_enclaves_nsm_api::driver::nsm_process_request;
use serde_bytes::ByteBuf;

use super::{EvidenceSource, ProviderError};
use crate::Platform;

/// Evidence from the Nitro Secure Module.
#[derive(Debug, Clone)]
pub struct NsmSource {
    device: PathBuf,
}

impl NsmSource {
    /// A source using the NSM device at `device` (normally `/dev/nsm`). The device is
    /// opened for each request.
    pub fn new(device: &Path) -> Self {
        Self {
            device: device.to_path_buf(),
        }
    }

    /// The NSM request for `report_data`.
    pub(crate) fn request(report_data: &[u8; 64]) -> Request {
        Request::Attestation {
            user_data: Some(ByteBuf::from(report_data.to_vec())),
            nonce: None,
            public_key: None,
        }
    }
}

impl EvidenceSource for NsmSource {
    fn platform(&self) -> Platform {
        Platform::Nitro
    }

    fn quote(&self, report_data: &[u8; 64]) -> Result<Vec<u8>, ProviderError> {
        // Opening the device ourselves (instead of `nsm_init`, which hard-codes /dev/nsm)
        // keeps the path configurable; the file is closed when dropped.
        let dev = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.device)
            .map_err(ProviderError::io("open", &self.device))?;
        match nsm_process_request(dev.as_raw_fd(), Self::request(report_data)) {
            Response::Attestation { document } if document.is_empty() => {
                Err(ProviderError::ShortEvidence {
                    what: "NSM attestation document",
                    len: 0,
                    min: 1,
                })
            }
            Response::Attestation { document } => Ok(document),
            Response::Error(code) => Err(ProviderError::Nsm(format!("{code:?}"))),
            other => Err(ProviderError::Nsm(format!("unexpected response {other:?}"))),
        }
    }
}
