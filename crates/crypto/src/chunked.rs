//! Streamed exchanges: chunked Oblivious HTTP (draft-ietf-ohai-chunked-ohttp), for answers
//! that arrive piece by piece (a model's tokens as server-sent events).
//!
//! The **request** is the same known-length Binary HTTP request as in [`crate::envelope`]
//! (with `pith-nonce` and `pith-expiry`), encapsulated as a chunked OHTTP request
//! (`message/ohttp-chunked-req`); `request_hash = keccak256(bhttp request)` as before.
//!
//! The **response** (`message/ohttp-chunked-res`) is a chunked OHTTP response whose plaintext
//! is a sequence of frames, each `type(1) ‖ length(4, big-endian) ‖ payload`:
//!
//! ```text
//! 0x01 HEAD  payload = Binary HTTP known-length response with an empty body (status, headers)
//! 0x02 DATA  payload = the next body bytes (any number of DATA frames, each ≤ MAX_FRAME)
//! 0x03 END   payload = the receipt (JSON of a SignedReceipt), then the stream's final chunk
//! ```
//!
//! exactly one HEAD first, one END last. `response_hash = keccak256(every byte of the
//! plaintext before the END frame)` — the HEAD and DATA frames with their headers — is what
//! the receipt in the END frame signs. Chunked OHTTP marks its final chunk, so a stream cut
//! short (a relay dropping the end, a worker dying) fails to open instead of passing for a
//! shorter answer; a frame the server did not write fails authentication.

use std::io;
use std::pin::Pin;

use alloy_primitives::Keccak256;
use futures::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, Cursor};

use crate::envelope::{ProgramServer, Request, Response};
use crate::error::{CryptoError, Result};
use crate::keccak256;

/// Frame type of the response head.
pub const FRAME_HEAD: u8 = 0x01;
/// Frame type of body bytes.
pub const FRAME_DATA: u8 = 0x02;
/// Frame type of the end (the receipt).
pub const FRAME_END: u8 = 0x03;
/// Largest frame payload accepted (a writer splits larger bodies).
pub const MAX_FRAME: usize = 1 << 20;
/// Largest chunked request accepted by the server (requests are read whole).
pub const MAX_REQUEST: usize = 16 << 20;

/// A boxed reader of the encrypted response stream.
pub type BoxRead = Pin<Box<dyn AsyncRead + Send>>;
/// A boxed writer of the encrypted response stream.
pub type BoxWrite = Pin<Box<dyn AsyncWrite + Send>>;

type MakeReader = Box<dyn FnOnce(BoxRead) -> Result<BoxRead> + Send>;
type MakeWriter = Box<dyn FnOnce(BoxWrite) -> Result<BoxWrite> + Send>;

fn io_err(what: &'static str) -> impl Fn(io::Error) -> CryptoError {
    move |e| {
        // ohttp reports authentication and truncation failures as io errors wrapping its own.
        match e.get_ref().and_then(|i| i.downcast_ref::<ohttp::Error>()) {
            Some(ohttp::Error::Truncated) => CryptoError::malformed(what, "stream cut short"),
            Some(inner) => CryptoError::Decrypt(format!("{what}: {inner}")),
            None => CryptoError::malformed(what, e.to_string()),
        }
    }
}

/// An `AsyncWrite` into a shared buffer (the request is encapsulated in memory).
#[derive(Clone, Default)]
struct SharedBuf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl AsyncWrite for SharedBuf {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        self.0
            .lock()
            .map_err(|_| io::Error::other("buffer lock poisoned"))?
            .extend_from_slice(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(
        self: Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn poll_close(
        self: Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// Client side of one streamed exchange.
pub struct ChunkedClient {
    make_reader: MakeReader,
    request_hash: [u8; 32],
}

impl std::fmt::Debug for ChunkedClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkedClient")
            .field("request_hash", &hex::encode(self.request_hash))
            .finish_non_exhaustive()
    }
}

impl ChunkedClient {
    /// Encapsulate `request` as a chunked OHTTP request to the key configuration list
    /// `ohttp_keys`. Returns the `message/ohttp-chunked-req` bytes and the client that opens
    /// the response.
    pub fn encapsulate(ohttp_keys: &[u8], request: &Request) -> Result<(Vec<u8>, Self)> {
        let bhttp = request.to_bhttp()?;
        let client = ohttp::ClientRequest::from_encoded_config_list(ohttp_keys)
            .map_err(|e| CryptoError::malformed("ohttp key configuration", e.to_string()))?;
        let buf = SharedBuf::default();
        let mut stream = client
            .encapsulate_stream(buf.clone())
            .map_err(|e| CryptoError::Internal(format!("chunked encapsulation: {e}")))?;
        // The sink is memory: these futures complete on their first poll.
        futures::executor::block_on(async {
            stream.write_all(&bhttp).await?;
            stream.close().await
        })
        .map_err(|e| CryptoError::Internal(format!("chunked encapsulation: {e}")))?;
        let wire = std::mem::take(
            &mut *buf
                .0
                .lock()
                .map_err(|_| CryptoError::Internal("buffer lock poisoned".into()))?,
        );
        let make_reader: MakeReader = Box::new(move |src: BoxRead| {
            let r = stream
                .response(src)
                .map_err(|e| CryptoError::Internal(format!("chunked response: {e}")))?;
            Ok(Box::pin(r) as BoxRead)
        });
        Ok((
            wire,
            Self {
                make_reader,
                request_hash: keccak256(&bhttp),
            },
        ))
    }

    /// keccak256 of the Binary HTTP request (the receipt's `requestHash`).
    pub fn request_hash(&self) -> [u8; 32] {
        self.request_hash
    }

    /// Open the encrypted response arriving on `src`.
    pub fn response(self, src: BoxRead) -> Result<FrameReader> {
        Ok(FrameReader {
            src: (self.make_reader)(src)?,
            hash: Keccak256::new(),
            state: ReadState::Head,
        })
    }
}

/// One piece of a streamed response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// Status and headers (the response's `body` is empty).
    Head(Response),
    /// The next body bytes.
    Data(Vec<u8>),
    /// The end: the receipt bytes and the hash of everything before them.
    End {
        /// The END frame's payload (JSON of the receipt).
        receipt: Vec<u8>,
        /// keccak256 of the plaintext before the END frame (what the receipt must sign).
        response_hash: [u8; 32],
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadState {
    Head,
    Body,
    Done,
}

/// Reads the frames of a streamed response, in order, checking their sequence.
pub struct FrameReader {
    src: BoxRead,
    hash: Keccak256,
    state: ReadState,
}

impl std::fmt::Debug for FrameReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameReader")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl FrameReader {
    /// The next frame; `None` after END once the stream's final chunk was authenticated.
    pub async fn next(&mut self) -> Result<Option<Frame>> {
        const WHAT: &str = "chunked response";
        if self.state == ReadState::Done {
            return Ok(None);
        }
        let mut header = [0u8; 5];
        self.src
            .read_exact(&mut header)
            .await
            .map_err(io_err(WHAT))?;
        let [kind, l0, l1, l2, l3] = header;
        let len = u32::from_be_bytes([l0, l1, l2, l3]) as usize;
        if len > MAX_FRAME {
            return Err(CryptoError::malformed(
                WHAT,
                format!("frame of {len} bytes over the {MAX_FRAME}-byte limit"),
            ));
        }
        let mut payload = vec![0u8; len];
        self.src
            .read_exact(&mut payload)
            .await
            .map_err(io_err(WHAT))?;
        match (self.state, kind) {
            (ReadState::Head, FRAME_HEAD) => {
                self.hash.update(header);
                self.hash.update(&payload);
                let head = Response::from_bhttp(&payload)?;
                if !head.body.is_empty() {
                    return Err(CryptoError::malformed(WHAT, "HEAD frame with a body"));
                }
                self.state = ReadState::Body;
                Ok(Some(Frame::Head(head)))
            }
            (ReadState::Body, FRAME_DATA) => {
                self.hash.update(header);
                self.hash.update(&payload);
                Ok(Some(Frame::Data(payload)))
            }
            (ReadState::Body, FRAME_END) => {
                // Nothing may follow END, and the final chunk must authenticate.
                let mut rest = [0u8; 1];
                let n = self.src.read(&mut rest).await.map_err(io_err(WHAT))?;
                if n != 0 {
                    return Err(CryptoError::malformed(WHAT, "bytes after the END frame"));
                }
                self.state = ReadState::Done;
                let response_hash = std::mem::take(&mut self.hash).finalize().0;
                Ok(Some(Frame::End {
                    receipt: payload,
                    response_hash,
                }))
            }
            (state, kind) => Err(CryptoError::malformed(
                WHAT,
                format!("frame type {kind:#04x} out of order ({state:?})"),
            )),
        }
    }

    /// Read the whole response: head with the body of all DATA frames, the receipt bytes and
    /// the response hash.
    pub async fn read_all(mut self) -> Result<(Response, Vec<u8>, [u8; 32])> {
        let mut head = None;
        let mut body = Vec::new();
        while let Some(f) = self.next().await? {
            match f {
                Frame::Head(h) => head = Some(h),
                Frame::Data(d) => body.extend_from_slice(&d),
                Frame::End {
                    receipt,
                    response_hash,
                } => {
                    let mut r = head.ok_or_else(|| {
                        CryptoError::malformed("chunked response", "no HEAD frame")
                    })?;
                    r.body = body;
                    return Ok((r, receipt, response_hash));
                }
            }
        }
        Err(CryptoError::malformed("chunked response", "no END frame"))
    }
}

impl ProgramServer {
    /// Decapsulate a `message/ohttp-chunked-req`. The caller checks freshness and replay,
    /// as for [`ProgramServer::decapsulate`].
    pub fn decapsulate_chunked(&self, wire: &[u8]) -> Result<(Request, ChunkedReply)> {
        if wire.len() > MAX_REQUEST {
            return Err(CryptoError::malformed(
                "chunked request",
                format!("over {MAX_REQUEST} bytes"),
            ));
        }
        let server = self.server_for(wire)?.clone();
        let mut stream = server.decapsulate_stream(Cursor::new(wire.to_vec()));
        let mut bhttp = Vec::new();
        // The source is memory: this completes on its first poll.
        futures::executor::block_on(stream.read_to_end(&mut bhttp))
            .map_err(io_err("chunked request"))?;
        let request = Request::from_bhttp(&bhttp)?;
        let make_writer: MakeWriter = Box::new(move |dst: BoxWrite| {
            let w = stream
                .response(dst)
                .map_err(|e| CryptoError::Internal(format!("chunked response: {e}")))?;
            Ok(Box::pin(w) as BoxWrite)
        });
        Ok((
            request,
            ChunkedReply {
                make_writer,
                request_hash: keccak256(&bhttp),
            },
        ))
    }
}

/// Server side of one streamed exchange.
pub struct ChunkedReply {
    make_writer: MakeWriter,
    request_hash: [u8; 32],
}

impl std::fmt::Debug for ChunkedReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkedReply")
            .field("request_hash", &hex::encode(self.request_hash))
            .finish_non_exhaustive()
    }
}

impl ChunkedReply {
    /// keccak256 of the Binary HTTP request.
    pub fn request_hash(&self) -> [u8; 32] {
        self.request_hash
    }

    /// Start the encrypted response on `dst`.
    pub fn writer(self, dst: BoxWrite) -> Result<FrameWriter> {
        Ok(FrameWriter {
            dst: (self.make_writer)(dst)?,
            hash: Keccak256::new(),
            state: ReadState::Head,
        })
    }
}

/// Writes the frames of a streamed response; each frame goes out as its own chunk(s) at once.
pub struct FrameWriter {
    dst: BoxWrite,
    hash: Keccak256,
    state: ReadState,
}

impl std::fmt::Debug for FrameWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameWriter")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl FrameWriter {
    async fn frame(&mut self, kind: u8, payload: &[u8], hashed: bool) -> Result<()> {
        let len = u32::try_from(payload.len())
            .map_err(|_| CryptoError::Internal("frame too large".into()))?;
        let mut bytes = Vec::with_capacity(payload.len().saturating_add(5));
        bytes.push(kind);
        bytes.extend_from_slice(&len.to_be_bytes());
        bytes.extend_from_slice(payload);
        if hashed {
            self.hash.update(&bytes);
        }
        let w = |e: io::Error| CryptoError::Internal(format!("writing the response: {e}"));
        self.dst.write_all(&bytes).await.map_err(w)?;
        self.dst.flush().await.map_err(w)
    }

    /// The status and headers (first, once).
    pub async fn head(&mut self, status: u16, headers: Vec<(String, String)>) -> Result<()> {
        if self.state != ReadState::Head {
            return Err(CryptoError::Internal("HEAD written twice".into()));
        }
        let bhttp = Response {
            status,
            headers,
            body: Vec::new(),
        }
        .to_bhttp()?;
        self.frame(FRAME_HEAD, &bhttp, true).await?;
        self.state = ReadState::Body;
        Ok(())
    }

    /// More body bytes (split into frames of at most [`MAX_FRAME`]).
    pub async fn data(&mut self, bytes: &[u8]) -> Result<()> {
        if self.state != ReadState::Body {
            return Err(CryptoError::Internal("DATA outside the body".into()));
        }
        for piece in bytes.chunks(MAX_FRAME) {
            self.frame(FRAME_DATA, piece, true).await?;
        }
        Ok(())
    }

    /// keccak256 of what was written so far (what the receipt signs).
    pub fn response_hash(&self) -> [u8; 32] {
        self.hash.clone().finalize().0
    }

    /// The END frame with `receipt`, then the final chunk.
    pub async fn end(mut self, receipt: &[u8]) -> Result<()> {
        if self.state != ReadState::Body {
            return Err(CryptoError::Internal("END before HEAD".into()));
        }
        self.frame(FRAME_END, receipt, false).await?;
        self.state = ReadState::Done;
        self.dst
            .close()
            .await
            .map_err(|e| CryptoError::Internal(format!("closing the response: {e}")))
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]
mod tests {
    use super::*;
    use crate::keytree::{MasterKey, ProgramId};

    fn server(program: u8) -> ProgramServer {
        let keys = MasterKey::from_bytes([5; 32], 1)
            .program_keys(&ProgramId([program; 32]))
            .unwrap();
        ProgramServer::new(&keys).unwrap()
    }

    fn request() -> Request {
        Request::new(
            "POST",
            "/v1/chat/completions",
            vec![("content-type".into(), "application/json".into())],
            br#"{"stream":true}"#.to_vec(),
            [7; 16],
            1_000,
        )
    }

    /// Run the server side into a byte vector: head, three data pieces, end.
    fn respond(s: &ProgramServer, wire: &[u8], receipt: &[u8]) -> (Vec<u8>, [u8; 32], [u8; 32]) {
        let (req, reply) = s.decapsulate_chunked(wire).unwrap();
        assert_eq!(req, request());
        let rh = reply.request_hash();
        let buf = SharedBuf::default();
        let mut w = reply.writer(Box::pin(buf.clone())).unwrap();
        let hash = futures::executor::block_on(async {
            w.head(
                200,
                vec![("content-type".into(), "text/event-stream".into())],
            )
            .await
            .unwrap();
            for piece in ["data: a\n\n", "data: b\n\n", "data: [DONE]\n\n"] {
                w.data(piece.as_bytes()).await.unwrap();
            }
            let h = w.response_hash();
            w.end(receipt).await.unwrap();
            h
        });
        let out = buf.0.lock().unwrap().clone();
        (out, rh, hash)
    }

    fn open(client: ChunkedClient, bytes: Vec<u8>) -> Result<(Response, Vec<u8>, [u8; 32])> {
        let r = client.response(Box::pin(Cursor::new(bytes)))?;
        futures::executor::block_on(r.read_all())
    }

    #[test]
    fn streamed_round_trip_and_hashes_agree() {
        let s = server(1);
        let (wire, client) =
            ChunkedClient::encapsulate(&s.encoded_key_configs().unwrap(), &request()).unwrap();
        let (out, rh, sh) = respond(&s, &wire, b"{\"receipt\":1}");
        assert_eq!(rh, client.request_hash());
        let (resp, receipt, ch) = open(client, out).unwrap();
        assert_eq!(resp.status, 200);
        assert_eq!(resp.body, b"data: a\n\ndata: b\n\ndata: [DONE]\n\n");
        assert_eq!(receipt, b"{\"receipt\":1}");
        assert_eq!(ch, sh);
    }

    #[test]
    fn frames_arrive_one_by_one() {
        let s = server(1);
        let (wire, client) =
            ChunkedClient::encapsulate(&s.encoded_key_configs().unwrap(), &request()).unwrap();
        let (out, _, _) = respond(&s, &wire, b"r");
        let mut r = client.response(Box::pin(Cursor::new(out))).unwrap();
        futures::executor::block_on(async {
            assert!(matches!(r.next().await.unwrap(), Some(Frame::Head(_))));
            assert_eq!(
                r.next().await.unwrap(),
                Some(Frame::Data(b"data: a\n\n".to_vec()))
            );
            assert_eq!(
                r.next().await.unwrap(),
                Some(Frame::Data(b"data: b\n\n".to_vec()))
            );
            assert!(matches!(r.next().await.unwrap(), Some(Frame::Data(_))));
            assert!(matches!(r.next().await.unwrap(), Some(Frame::End { .. })));
            assert_eq!(r.next().await.unwrap(), None);
        });
    }

    #[test]
    fn truncated_tampered_or_misdirected_streams_fail() {
        let s = server(1);
        let cfg = s.encoded_key_configs().unwrap();
        let (wire, _) = ChunkedClient::encapsulate(&cfg, &request()).unwrap();
        // another program's key
        assert!(server(2).decapsulate_chunked(&wire).is_err());
        // a flipped request byte
        for i in [0, 9, wire.len() / 2, wire.len() - 1] {
            let mut w = wire.clone();
            w[i] ^= 1;
            assert!(s.decapsulate_chunked(&w).is_err(), "request flip at {i}");
        }
        // the response: every cut and a flipped byte everywhere fail to open
        let (wire, client0) = ChunkedClient::encapsulate(&cfg, &request()).unwrap();
        drop(client0);
        let (out, _, _) = respond(&s, &wire, b"receipt");
        for cut in [0, 10, out.len() / 2, out.len() - 1] {
            let (wire2, client) = ChunkedClient::encapsulate(&cfg, &request()).unwrap();
            let (out2, _, _) = respond(&s, &wire2, b"receipt");
            assert!(open(client, out2[..cut].to_vec()).is_err(), "cut at {cut}");
        }
        for i in (0..out.len()).step_by(7) {
            let (wire2, client) = ChunkedClient::encapsulate(&cfg, &request()).unwrap();
            let (mut out2, _, _) = respond(&s, &wire2, b"receipt");
            out2[i] ^= 0x40;
            assert!(open(client, out2).is_err(), "response flip at {i}");
        }
        // a response to another request does not open
        let (wire_a, _client_a) = ChunkedClient::encapsulate(&cfg, &request()).unwrap();
        let (_wire_b, client_b) = ChunkedClient::encapsulate(&cfg, &request()).unwrap();
        let (out_a, _, _) = respond(&s, &wire_a, b"receipt");
        assert!(open(client_b, out_a).is_err());
    }

    #[test]
    fn frame_order_is_enforced() {
        let s = server(1);
        let cfg = s.encoded_key_configs().unwrap();
        let (wire, client) = ChunkedClient::encapsulate(&cfg, &request()).unwrap();
        let (_, reply) = s.decapsulate_chunked(&wire).unwrap();
        let buf = SharedBuf::default();
        let mut w = reply.writer(Box::pin(buf.clone())).unwrap();
        futures::executor::block_on(async {
            assert!(w.data(b"x").await.is_err(), "DATA before HEAD");
            // A raw END before HEAD, written past the writer's checks.
            w.frame(FRAME_END, b"r", false).await.unwrap();
            w.dst.close().await.unwrap();
        });
        let out = buf.0.lock().unwrap().clone();
        let err = open(client, out).unwrap_err();
        assert!(err.to_string().contains("out of order"), "{err}");
    }
}
