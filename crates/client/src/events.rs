//! A release's progress, pushed by the server as server-sent events.
//!
//! `GET /api/v1/releases/{id}/events` sends an `update` event whenever the release changes
//! (its view and the log entries written since the last event) and an `end` event once it
//! has finished, after which the server closes the stream. Each event's id is the newest
//! log entry sent so far; when a connection breaks, the stream is opened again from there
//! (`?after=ID`), so no entry is lost or shown twice.

use std::time::Duration;

use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::error::{api_error, Error};
use crate::resources::{LogEntry, Release};
use crate::Client;

/// How many times in a row a broken stream is opened again before giving up.
const MAX_REOPENS: u32 = 10;
const REOPEN_PAUSE: Duration = Duration::from_millis(500);

/// One push from the server: where the release is, and what its log gained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReleaseUpdate {
    pub release: Release,
    /// Log entries written since the previous update, oldest first.
    #[serde(default)]
    pub entries: Vec<LogEntry>,
    /// Whether this is the last update: the release has ended.
    #[serde(skip)]
    pub last: bool,
}

/// The updates of one release, read with [`ReleaseEvents::next`].
#[derive(Debug)]
pub struct ReleaseEvents {
    client: Client,
    release_id: String,
    after: Option<i64>,
    response: Option<reqwest::Response>,
    frames: FrameReader,
    reopens: u32,
    finished: bool,
}

impl ReleaseEvents {
    pub(crate) fn new(client: Client, release_id: &str) -> ReleaseEvents {
        ReleaseEvents {
            client,
            release_id: release_id.to_owned(),
            after: None,
            response: None,
            frames: FrameReader::default(),
            reopens: 0,
            finished: false,
        }
    }

    /// The next update, or `None` once the last one has been read. An error ends the
    /// stream: the server refused it, or it broke and could not be opened again.
    pub async fn next(&mut self) -> Option<Result<ReleaseUpdate, Error>> {
        while !self.finished {
            if let Some(frame) = self.frames.next_frame() {
                match self.update_of(frame) {
                    Ok(Some(update)) => return Some(Ok(update)),
                    Ok(None) => continue,
                    Err(err) => return self.fail(err),
                }
            }
            if let Err(err) = self.read_more().await {
                return self.fail(err);
            }
        }
        None
    }

    fn fail(&mut self, err: Error) -> Option<Result<ReleaseUpdate, Error>> {
        self.finished = true;
        Some(Err(err))
    }

    /// Reads an event's data; events of other kinds (a newer server's) are skipped.
    fn update_of(&mut self, frame: Frame) -> Result<Option<ReleaseUpdate>, Error> {
        let last = match frame.event.as_str() {
            "update" => false,
            "end" => true,
            _ => return Ok(None),
        };
        let mut update: ReleaseUpdate = serde_json::from_str(&frame.data)
            .map_err(|e| Error::Decode(format!("a release event: {e}")))?;
        update.last = last;
        if let Some(newest) = update.entries.last() {
            self.after = Some(newest.id);
        }
        self.finished = last;
        self.reopens = 0;
        Ok(Some(update))
    }

    /// Reads the next chunk of the stream, opening it first, or again after it broke.
    async fn read_more(&mut self) -> Result<(), Error> {
        let response = match &mut self.response {
            Some(response) => response,
            None => self.response.insert(self.open().await?),
        };
        let broke = match response.chunk().await {
            Ok(Some(bytes)) => {
                self.frames.push(&bytes);
                return Ok(());
            }
            Ok(None) => "the server closed the stream before the release ended".to_owned(),
            Err(err) => err.to_string(),
        };

        self.response = None;
        self.frames = FrameReader::default();
        self.reopens += 1;
        if self.reopens > MAX_REOPENS {
            return Err(Error::Interrupted {
                server: self.client.server().to_string(),
                reason: broke,
            });
        }
        tokio::time::sleep(REOPEN_PAUSE).await;
        Ok(())
    }

    async fn open(&self) -> Result<reqwest::Response, Error> {
        let after = [("after", self.after.map(|id| id.to_string()))];
        let url = self
            .client
            .url(&["releases", &self.release_id, "events"], &after);
        let response = self.client.send(Method::GET, url, None, None).await?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = response.bytes().await.unwrap_or_default();
        Err(Error::Api(api_error(status.as_u16(), &body)))
    }
}

/// One server-sent event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Frame {
    pub event: String,
    pub data: String,
}

/// Cuts a byte stream into events, whatever the chunks' boundaries.
#[derive(Debug, Default)]
pub(crate) struct FrameReader {
    buffer: Vec<u8>,
    current: Frame,
    has_data: bool,
}

impl FrameReader {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// The next complete event, if the bytes so far hold one. Comments (keep-alives) and
    /// fields other than `event` and `data` are skipped.
    pub fn next_frame(&mut self) -> Option<Frame> {
        while let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.buffer.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line[..end]);
            let line = line.strip_suffix('\r').unwrap_or(&line);
            if line.is_empty() {
                let frame = std::mem::take(&mut self.current);
                if std::mem::take(&mut self.has_data) {
                    return Some(frame);
                }
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "event" => self.current.event = value.to_owned(),
                "data" => {
                    if self.has_data {
                        self.current.data.push('\n');
                    }
                    self.current.data.push_str(value);
                    self.has_data = true;
                }
                _ => {}
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_chunks_are_put_back_together() {
        let mut reader = FrameReader::default();
        reader.push(b": keep-alive\n\nevent: upd");
        assert_eq!(reader.next_frame(), None);
        reader.push(b"ate\nid: 7\ndata: {\"a\":\ndata: 1}\r\n\r\nevent: end\ndata: x\n");
        let first = reader.next_frame().unwrap();
        assert_eq!(first.event, "update");
        assert_eq!(first.data, "{\"a\":\n1}");
        assert_eq!(reader.next_frame(), None);
        reader.push(b"\n");
        assert_eq!(reader.next_frame().unwrap().event, "end");
    }

    #[test]
    fn a_multibyte_character_cut_between_chunks_survives() {
        let mut reader = FrameReader::default();
        let text = "data: déjà vu\n\n".as_bytes();
        reader.push(&text[..8]);
        assert_eq!(reader.next_frame(), None);
        reader.push(&text[8..]);
        assert_eq!(reader.next_frame().unwrap().data, "déjà vu");
    }
}
