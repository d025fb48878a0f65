//! Turning sampled tokens into text deltas: UTF-8 characters split across tokens are held back
//! until complete, and text that may be the start of a stop sequence is held back until it is
//! known not to be one.

/// Incremental detokenizer with stop sequences.
#[derive(Debug, Default)]
pub(crate) struct TextStream {
    /// Bytes of an incomplete UTF-8 character.
    pending: Vec<u8>,
    /// Decoded text not yet emitted (it may begin a stop sequence).
    held: String,
    stops: Vec<String>,
    /// Everything emitted so far.
    emitted: String,
}

/// What pushing a token's bytes gave.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Step {
    /// Text now safe to emit (may be empty).
    pub(crate) delta: String,
    /// A stop sequence appeared: the completion ends here, without it.
    pub(crate) stopped: bool,
}

impl TextStream {
    pub(crate) fn new(stops: Vec<String>) -> Self {
        Self {
            stops,
            ..Self::default()
        }
    }

    /// Adds a token's bytes.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> Step {
        self.pending.extend_from_slice(bytes);
        self.decode_pending(false);
        if let Some(at) = self
            .stops
            .iter()
            .filter_map(|s| self.held.find(s.as_str()))
            .min()
        {
            self.held.truncate(at);
            let delta = std::mem::take(&mut self.held);
            self.pending.clear();
            self.emitted.push_str(&delta);
            return Step {
                delta,
                stopped: true,
            };
        }
        // Hold back the longest tail of `held` that is a proper prefix of a stop sequence.
        let keep = self
            .stops
            .iter()
            .map(|s| longest_suffix_prefix(&self.held, s))
            .max()
            .unwrap_or(0);
        let cut = self.held.len() - keep;
        let delta: String = self.held.drain(..cut).collect();
        self.emitted.push_str(&delta);
        Step {
            delta,
            stopped: false,
        }
    }

    /// Ends the stream: whatever is held is emitted (an incomplete character as U+FFFD).
    pub(crate) fn finish(&mut self) -> String {
        self.decode_pending(true);
        let delta = std::mem::take(&mut self.held);
        self.emitted.push_str(&delta);
        delta
    }

    /// All text emitted so far.
    pub(crate) fn text(&self) -> &str {
        &self.emitted
    }

    /// Moves the complete characters of `pending` to `held`; invalid bytes become U+FFFD. With
    /// `all`, an incomplete character at the end is replaced too.
    fn decode_pending(&mut self, all: bool) {
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(s) => {
                    self.held.push_str(s);
                    self.pending.clear();
                    return;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    // `valid` bytes are UTF-8 by the error's contract.
                    self.held
                        .push_str(&String::from_utf8_lossy(&self.pending[..valid]));
                    match e.error_len() {
                        Some(bad) => {
                            self.held.push(char::REPLACEMENT_CHARACTER);
                            self.pending.drain(..valid + bad);
                        }
                        None if all => {
                            self.held.push(char::REPLACEMENT_CHARACTER);
                            self.pending.clear();
                            return;
                        }
                        None => {
                            self.pending.drain(..valid);
                            return;
                        }
                    }
                }
            }
        }
    }
}

/// Length of the longest suffix of `text` that is a proper prefix of `stop` (0 if none), on a
/// character boundary of `text`.
fn longest_suffix_prefix(text: &str, stop: &str) -> usize {
    let max = stop.len().saturating_sub(1).min(text.len());
    (1..=max)
        .rev()
        .find(|&n| {
            let start = text.len() - n;
            text.is_char_boundary(start) && stop.as_bytes().starts_with(&text.as_bytes()[start..])
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stops: &[&str], chunks: &[&[u8]]) -> (Vec<String>, bool, String) {
        let mut s = TextStream::new(stops.iter().map(|s| (*s).to_owned()).collect());
        let mut deltas = Vec::new();
        let mut stopped = false;
        for c in chunks {
            let step = s.push(c);
            deltas.push(step.delta);
            if step.stopped {
                stopped = true;
                break;
            }
        }
        if !stopped {
            deltas.push(s.finish());
        }
        (deltas, stopped, s.text().to_owned())
    }

    #[test]
    fn multibyte_character_split_across_tokens_is_held_until_complete() {
        // "é" = C3 A9, "🙂" = F0 9F 99 82
        let (deltas, _, text) = run(&[], &[b"a\xC3", b"\xA9", b"\xF0\x9F", b"\x99", b"\x82b"]);
        assert_eq!(deltas, ["a", "é", "", "", "🙂b", ""]);
        assert_eq!(text, "aé🙂b");
        assert!(
            deltas
                .iter()
                .all(|d| std::str::from_utf8(d.as_bytes()).is_ok())
        );
    }

    #[test]
    fn invalid_bytes_become_replacement_characters() {
        let (_, _, text) = run(&[], &[b"x\xFFy", b"\xC3"]);
        assert_eq!(text, "x\u{FFFD}y\u{FFFD}");
    }

    #[test]
    fn stop_sequence_across_tokens_ends_without_it() {
        let (deltas, stopped, text) = run(&["END"], &[b"hello E", b"N", b"D more"]);
        assert!(stopped);
        assert_eq!(text, "hello ");
        assert_eq!(deltas.concat(), "hello ");
    }

    #[test]
    fn held_prefix_is_released_when_it_is_not_a_stop() {
        let (deltas, stopped, text) = run(&["END"], &[b"hello E", b"N", b"X"]);
        assert!(!stopped);
        assert_eq!(deltas, ["hello ", "", "ENX", ""]);
        assert_eq!(text, "hello ENX");
    }

    #[test]
    fn earliest_of_several_stops_wins() {
        let (_, stopped, text) = run(&["b", "a"], &[b"xxab"]);
        assert!(stopped);
        assert_eq!(text, "xx");
    }

    #[test]
    fn suffix_prefix_respects_char_boundaries() {
        assert_eq!(longest_suffix_prefix("aé", "é!"), 2);
        assert_eq!(longest_suffix_prefix("abc", "cd"), 1);
        assert_eq!(longest_suffix_prefix("abc", "xy"), 0);
        assert_eq!(longest_suffix_prefix("", "xy"), 0);
    }
}
