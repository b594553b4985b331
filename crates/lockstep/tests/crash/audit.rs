//! The audit after the storm: what the database says, set against what the receivers saw
//! and what the API acknowledged to them, with the kills as the only excuse for a
//! difference. A request's generation names the process that sent it, so a repeat
//! across a kill is one whose generation changed.

use std::collections::HashMap;
use std::fmt::Write as _;

use serde_json::Value;

use crate::api::Api;
use crate::receiver::{LockCall, LogCall, Receivers, Seen};

/// One release as the API shows it at the end: its deliveries with their attempts, its
/// locks and its whole action log.
pub struct Record {
    pub release: Value,
    pub deliveries: Vec<Value>,
    pub locks: Vec<Value>,
    pub log: Vec<Value>,
}

pub async fn gather(api: &Api, release_ids: &[String]) -> Vec<Record> {
    let mut records = Vec::new();
    for id in release_ids {
        let release = api.get(&format!("/api/v1/releases/{id}")).await;
        let deliveries = api.get(&format!("/api/v1/releases/{id}/deliveries")).await;
        let locks = api
            .get(&format!("/api/v1/locks?release={id}&limit=500"))
            .await;
        let log = api
            .get(&format!("/api/v1/logs/{}", release["parent_log"]))
            .await;
        records.push(Record {
            release,
            deliveries: items(&deliveries, "items"),
            locks: items(&locks, "items"),
            log: items(&log, "entries"),
        });
    }
    records
}

fn items(value: &Value, key: &str) -> Vec<Value> {
    value[key].as_array().cloned().unwrap_or_default()
}

/// What was counted, for the report.
#[derive(Debug, Default)]
pub struct Counts {
    pub releases_closed: usize,
    pub releases_failed: usize,
    pub deliveries: usize,
    pub cancelled_with_their_release: usize,
    pub requests: usize,
    pub repeats_after_a_failure: usize,
    pub repeats_after_a_kill: usize,
    pub attempts_recorded: usize,
    pub attempts_lost_to_kills: usize,
    pub attempt_log_lines: usize,
    pub locks_continued: usize,
    pub locks_aborted: usize,
    pub receiver_lines: usize,
    pub receiver_lines_found: usize,
    pub receiver_lines_twice: usize,
}

pub struct Audit {
    pub counts: Counts,
    pub violations: Vec<String>,
    /// The generation of the process still running at the end.
    last_generation: u32,
}

impl Audit {
    pub fn run(records: &[Record], receivers: &Receivers, last_generation: u32) -> Audit {
        let mut audit = Audit {
            counts: Counts::default(),
            violations: Vec::new(),
            last_generation,
        };
        let lock_calls = receivers.lock_calls();
        let mut requests: HashMap<String, Vec<Seen>> = HashMap::new();
        for seen in receivers.seen() {
            requests
                .entry(seen.delivery.clone())
                .or_default()
                .push(seen);
        }
        audit.counts.requests = requests.values().map(Vec::len).sum();

        for record in records {
            audit.release(record, &lock_calls);
            let failed = record.release["stage"] == "failed";
            for delivery in &record.deliveries {
                let id = delivery["id"].as_str().unwrap_or_default();
                let seen = requests.remove(id).unwrap_or_default();
                audit.delivery(delivery, seen, failed);
            }
            audit.attempt_lines(record);
            audit.locks(record, &lock_calls);
        }
        for id in requests.keys() {
            audit.fail(format!("the receivers saw {id}, which no release has"));
        }
        audit.receiver_lines(records, &receivers.log_calls());
        audit
    }

    fn fail(&mut self, violation: String) {
        self.violations.push(violation);
    }

    /// Every release ended, and ended as its receivers decided: failed when one aborted.
    fn release(&mut self, record: &Record, lock_calls: &[LockCall]) {
        let release = &record.release;
        let aborted = record.deliveries.iter().any(|d| {
            lock_calls
                .iter()
                .any(|c| c.delivery == d["id"].as_str().unwrap_or("") && c.outcome == "abort")
        });
        let stage = release["stage"].as_str().unwrap_or("");
        match (stage, aborted) {
            ("closed", false) => self.counts.releases_closed += 1,
            ("failed", true) => self.counts.releases_failed += 1,
            _ => self.fail(format!(
                "release {} ({}) ended at {stage:?} (a receiver aborted: {aborted})",
                release["id"], release["tag"]
            )),
        }
    }

    /// A delivery reached its receiver, always with the same id and bytes; it was sent again
    /// only after a failed answer or across a kill; its attempts are all recorded except
    /// those a kill cut off. A release that failed cancels the deliveries it had not done.
    fn delivery(&mut self, delivery: &Value, seen: Vec<Seen>, release_failed: bool) {
        self.counts.deliveries += 1;
        let id = delivery["id"].as_str().unwrap_or_default().to_owned();
        let cancelled = release_failed && delivery["status"] == "cancelled";
        self.counts.cancelled_with_their_release += usize::from(cancelled);
        let (Some(first), Some(last)) = (seen.first(), seen.last()) else {
            if !cancelled {
                self.fail(format!("delivery {id} never reached its receiver"));
            }
            return;
        };
        if seen.iter().any(|s| s.body != first.body) {
            self.fail(format!("delivery {id} was sent with different bytes"));
        }

        let across_kills = self.repeats(&id, &seen);
        // A cancelled delivery is not sent again, so a kill may cut off its last attempt too.
        let cut_off_at_the_end = cancelled && last.generation < self.last_generation;
        let excused = across_kills + usize::from(cut_off_at_the_end);
        self.attempts(&id, delivery, seen.len(), excused);
        self.ending(&id, delivery, cancelled);
    }

    /// Checks each repeat of a request and answers how many came across a kill.
    fn repeats(&mut self, id: &str, seen: &[Seen]) -> usize {
        let mut across_kills = 0;
        for pair in seen.windows(2) {
            let killed = pair[1].generation > pair[0].generation;
            across_kills += usize::from(killed);
            if pair[0].answered >= 300 {
                self.counts.repeats_after_a_failure += 1;
            } else if killed {
                self.counts.repeats_after_a_kill += 1;
            } else {
                self.fail(format!(
                    "delivery {id} was sent again after a 200, with no kill"
                ));
            }
        }
        across_kills
    }

    /// A delivery ends with a successful last attempt, unless its failed release cancelled it.
    fn ending(&mut self, id: &str, delivery: &Value, cancelled: bool) {
        let last = delivery["attempt_log"]
            .as_array()
            .and_then(|a| a.last())
            .and_then(|a| a["status_code"].as_i64());
        let succeeded = delivery["status"] == "succeeded"
            && last.is_some_and(|code| (200..300).contains(&code));
        if !succeeded && !cancelled {
            let status = &delivery["status"];
            self.fail(format!("delivery {id} ended {status} after {last:?}"));
        }
    }

    fn attempts(&mut self, id: &str, delivery: &Value, requests: usize, across_kills: usize) {
        let attempts = delivery["attempt_log"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        self.counts.attempts_recorded += attempts.len();
        let numbered = attempts
            .iter()
            .enumerate()
            .all(|(i, a)| a["number"].as_i64() == Some(i as i64 + 1));
        if !numbered {
            self.fail(format!("delivery {id} has gaps in its attempt numbers"));
        }
        let lost = requests.saturating_sub(attempts.len());
        if attempts.len() > requests {
            self.fail(format!(
                "delivery {id} records more attempts than requests came"
            ));
        } else if lost > across_kills {
            self.fail(format!(
                "delivery {id} lost {lost} attempt records to {across_kills} kills"
            ));
        }
        self.counts.attempts_lost_to_kills += lost;

        // A success recorded and then sent again would show as a second one.
        let successes = attempts
            .iter()
            .filter(|a| {
                a["status_code"]
                    .as_i64()
                    .is_some_and(|c| (200..300).contains(&c))
            })
            .count();
        if successes > 1 {
            self.fail(format!(
                "delivery {id} records {successes} successful attempts"
            ));
        }
    }

    /// The engine writes a log line with every attempt it records, in the same transaction.
    fn attempt_lines(&mut self, record: &Record) {
        let lines = record.log.iter().filter(|e| e["kind"] == "attempt").count();
        let attempts: usize = record
            .deliveries
            .iter()
            .map(|d| d["attempt_log"].as_array().map_or(0, Vec::len))
            .sum();
        self.counts.attempt_log_lines += lines;
        if lines != attempts {
            let id = &record.release["id"];
            self.fail(format!(
                "release {id} logs {lines} attempts but records {attempts}"
            ));
        }
    }

    /// Every lock a receiver released stays released with its outcome; none is left open.
    fn locks(&mut self, record: &Record, lock_calls: &[LockCall]) {
        for lock in &record.locks {
            let delivery = lock["delivery"].as_str().unwrap_or("");
            let call = lock_calls.iter().find(|c| c.delivery == delivery);
            let Some(call) = call else {
                self.fail(format!(
                    "lock {} was never released by a receiver",
                    lock["id"]
                ));
                continue;
            };
            let kept = call.status == 200
                && lock["status"] == "released"
                && lock["outcome"].as_str() == Some(call.outcome);
            if !kept {
                self.fail(format!(
                    "lock {} was released with {} (answered {}) but reads {} {}",
                    lock["id"], call.outcome, call.status, lock["status"], lock["outcome"]
                ));
            } else if call.outcome == "abort" {
                self.counts.locks_aborted += 1;
            } else {
                self.counts.locks_continued += 1;
            }
        }
    }

    /// Every line a receiver wrote and was told was written is in the log; twice only if
    /// an earlier send got no answer.
    fn receiver_lines(&mut self, records: &[Record], log_calls: &[LogCall]) {
        let logs: HashMap<i64, &Vec<Value>> = records
            .iter()
            .filter_map(|r| Some((r.release["parent_log"].as_i64()?, &r.log)))
            .collect();
        self.counts.receiver_lines = log_calls.len();
        for call in log_calls {
            let found = logs.get(&call.parent_log).map_or(0, |log| {
                log.iter()
                    .filter(|e| e["message"].as_str() == Some(call.message.as_str()))
                    .count()
            });
            match found {
                _ if !(200..300).contains(&call.status) => self.fail(format!(
                    "the log line {:?} was refused with {}",
                    call.message, call.status
                )),
                0 => self.fail(format!("the log line {:?} was lost", call.message)),
                1 => self.counts.receiver_lines_found += 1,
                _ if call.sends > 1 => {
                    self.counts.receiver_lines_found += 1;
                    self.counts.receiver_lines_twice += 1;
                }
                n => self.fail(format!(
                    "the log line {:?} is there {n} times",
                    call.message
                )),
            }
        }
    }

    pub fn report(&self, kills: usize, seconds: u64) -> String {
        let c = &self.counts;
        let mut text = format!(
            "crash harness: {} releases ({} closed, {} failed on an abort), {kills} kills, \
             {seconds}s\n{c}  violations: {}\n",
            c.releases_closed + c.releases_failed,
            c.releases_closed,
            c.releases_failed,
            self.violations.len()
        );
        for violation in &self.violations {
            let _ = writeln!(text, "    {violation}");
        }
        text
    }
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "  deliveries: {} ({} cancelled with their failed release), {} requests; repeats: {} \
             after a failed answer, {} across a kill",
            self.deliveries,
            self.cancelled_with_their_release,
            self.requests,
            self.repeats_after_a_failure,
            self.repeats_after_a_kill
        )?;
        writeln!(
            f,
            "  attempts: {} recorded, {} cut off by a kill; {} attempt lines in the action logs",
            self.attempts_recorded, self.attempts_lost_to_kills, self.attempt_log_lines
        )?;
        writeln!(
            f,
            "  locks: {} released to continue, {} aborted; receiver log lines: {} of {} found, \
             {} written twice after a lost answer",
            self.locks_continued,
            self.locks_aborted,
            self.receiver_lines_found,
            self.receiver_lines,
            self.receiver_lines_twice
        )
    }
}
