//! The journal file: one checksummed JSON record per line.

use super::{Entry, Restored};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("journal {path}: cannot encode a record: {source}")]
    Encode {
        path: String,
        source: serde_json::Error,
    },
    #[error("journal in JetStream stream {stream}: {reason}")]
    Nats { stream: String, reason: String },
}

pub struct FileJournal {
    path: PathBuf,
    file: Mutex<File>,
}

/// `<crc32 of json, 8 hex digits> <json>\n`
fn encode(entry: &Entry) -> Result<String, serde_json::Error> {
    let json = serde_json::to_string(entry)?;
    Ok(format!("{:08x} {json}\n", crc32fast::hash(json.as_bytes())))
}

fn decode(line: &str) -> Result<Entry, String> {
    let (crc, json) = line
        .split_once(' ')
        .ok_or_else(|| "no checksum".to_string())?;
    let crc = u32::from_str_radix(crc, 16).map_err(|_| format!("bad checksum field `{crc}`"))?;
    if crc32fast::hash(json.as_bytes()) != crc {
        return Err("checksum mismatch".into());
    }
    serde_json::from_str(json).map_err(|e| format!("not a journal record: {e}"))
}

/// Past this many records a journal is rewritten on open as the state they
/// add up to: a tick a cycle would otherwise grow it without end.
const COMPACT_AFTER: usize = 20_000;
/// Resolved incidents older than this are left out of a compacted journal;
/// no guard looks back further than a day.
const KEEP_RESOLVED_FOR: i64 = 7 * 24 * 3600;

/// Writes `state` as a fresh journal beside `path` and moves it into place
/// (fsync, rename, fsync of the directory): a crash leaves either the old
/// journal or the new one, whole. Returns the new file, open for appending.
fn compact(path: &Path, state: &Restored) -> Result<File, JournalError> {
    let io = |source| JournalError::Io {
        path: path.display().to_string(),
        source,
    };
    let enc = |source| JournalError::Encode {
        path: path.display().to_string(),
        source,
    };
    let tmp = path.with_extension("compact");
    let mut out = File::create(&tmp).map_err(io)?;
    let mut text = String::new();
    for inc in &state.incidents {
        text.push_str(&encode(&Entry::Incident(Box::new(inc.clone()))).map_err(enc)?);
    }
    for intent in &state.unfinished {
        text.push_str(&encode(&Entry::Intent(intent.clone())).map_err(enc)?);
    }
    for e in &state.ledger {
        text.push_str(&encode(&Entry::Ledger(e.clone())).map_err(enc)?);
    }
    if let Some(at) = state.last_tick {
        text.push_str(&encode(&Entry::Tick { at }).map_err(enc)?);
    }
    out.write_all(text.as_bytes()).map_err(io)?;
    out.sync_all().map_err(io)?;
    drop(out);
    std::fs::rename(&tmp, path).map_err(io)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
    }
    OpenOptions::new().append(true).open(path).map_err(io)
}

/// What a journal's lines hold, up to the first bad one.
struct Parsed {
    entries: Vec<Entry>,
    /// Bytes of the good records before any torn or corrupt one.
    good_len: u64,
    cut: Option<String>,
    lines: usize,
}

fn parse(file: &mut File) -> Parsed {
    let mut entries = Vec::new();
    let mut good_len: u64 = 0;
    let mut cut = None;
    let mut reader = BufReader::new(file);
    let mut line_no = 0;
    loop {
        let mut line = String::new();
        let n = match reader.read_line(&mut line) {
            Ok(n) => n,
            Err(e) => {
                cut = Some(format!("line {}: unreadable: {e}", line_no + 1));
                break;
            }
        };
        if n == 0 {
            break;
        }
        line_no += 1;
        let Some(body) = line.strip_suffix('\n') else {
            cut = Some(format!("line {line_no}: torn (no newline): cut off"));
            break;
        };
        match decode(body) {
            Ok(e) => {
                entries.push(e);
                good_len += n as u64;
            }
            Err(reason) => {
                cut = Some(format!(
                    "line {line_no}: {reason}: cut off with what follows"
                ));
                break;
            }
        }
    }
    Parsed {
        entries,
        good_len,
        cut,
        lines: line_no,
    }
}

impl FileJournal {
    /// Opens (or creates) the journal and reads back what it holds. A torn
    /// or corrupt tail is cut off, so what follows is appended to good
    /// records; `Restored::cut` says what was cut.
    pub fn open(path: &Path) -> Result<(FileJournal, Restored), JournalError> {
        let io = |source| JournalError::Io {
            path: path.display().to_string(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(io)?;
        let Parsed {
            entries,
            good_len,
            cut,
            lines: line_no,
        } = parse(&mut file);
        if cut.is_some() {
            file.set_len(good_len).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        file.seek(SeekFrom::End(0)).map_err(io)?;
        let mut restored = Restored::from_entries(entries);
        restored.cut = cut;
        if line_no > COMPACT_AFTER {
            drop(file);
            let last = restored.last_tick.unwrap_or(0);
            restored.forget_resolved_before(last - KEEP_RESOLVED_FOR);
            restored.forget_ledger_before(last - crate::trust::MAX_WINDOW);
            file = compact(path, &restored)?;
        }
        Ok((
            FileJournal {
                path: path.to_path_buf(),
                file: Mutex::new(file),
            },
            restored,
        ))
    }

    /// Reads what a journal holds without changing it (another process may
    /// be writing it): a torn tail is reported, not cut.
    pub fn read(path: &Path) -> Result<Restored, JournalError> {
        let mut file = File::open(path).map_err(|source| JournalError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let parsed = parse(&mut file);
        let mut restored = Restored::from_entries(parsed.entries);
        restored.cut = parsed.cut;
        Ok(restored)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends a record; `durable` waits until it is on disk (fsync).
    pub fn append(&self, entry: &Entry, durable: bool) -> Result<(), JournalError> {
        let line = encode(entry).map_err(|source| JournalError::Encode {
            path: self.path.display().to_string(),
            source,
        })?;
        let io = |source| JournalError::Io {
            path: self.path.display().to_string(),
            source,
        };
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        file.write_all(line.as_bytes()).map_err(io)?;
        if durable {
            file.sync_data().map_err(io)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::act::Action;
    use crate::journal::IntentEntry;
    use crate::model::ObjectRef;

    fn intent(step: usize) -> Entry {
        Entry::Intent(IntentEntry {
            incident: "inc-1".into(),
            playbook: "pb".into(),
            step,
            action: Action::CordonNode,
            target: ObjectRef::node("n1"),
            at: 100,
            rollback: false,
            revision: None,
            wanted_replicas: None,
        })
    }

    #[test]
    fn records_survive_a_reopen_and_a_torn_tail_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.log");
        {
            let (j, r) = FileJournal::open(&path).unwrap();
            assert_eq!(r, Restored::default());
            j.append(&intent(1), true).unwrap();
            j.append(&Entry::Tick { at: 120 }, true).unwrap();
        }
        // A crash mid-write leaves half a line.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"0badc0de {\"type\":\"tick\",\"a").unwrap();
        drop(f);
        let (j, r) = FileJournal::open(&path).unwrap();
        assert_eq!(r.last_tick, Some(120));
        assert_eq!(r.unfinished.len(), 1);
        assert_eq!(r.cut.as_deref(), Some("line 3: torn (no newline): cut off"));
        j.append(&Entry::Tick { at: 150 }, true).unwrap();
        drop(j);
        let (_, r) = FileJournal::open(&path).unwrap();
        assert_eq!((r.last_tick, r.cut), (Some(150), None));
    }

    #[test]
    fn an_incident_written_before_suspects_existed_still_reads() {
        let inc = crate::incident::Incident::new("inc-1", 100, crate::model::Severity::High);
        let mut value = serde_json::to_value(Entry::Incident(Box::new(inc.clone()))).unwrap();
        assert!(value.as_object_mut().unwrap().remove("suspects").is_some());
        let json = value.to_string();
        let line = format!("{:08x} {json}", crc32fast::hash(json.as_bytes()));
        assert_eq!(decode(&line), Ok(Entry::Incident(Box::new(inc))));
    }

    #[test]
    fn a_corrupt_record_stops_the_read_and_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.log");
        let (j, _) = FileJournal::open(&path).unwrap();
        j.append(&Entry::Tick { at: 1 }, true).unwrap();
        j.append(&Entry::Tick { at: 2 }, true).unwrap();
        drop(j);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replacen("\"at\":2", "\"at\":3", 1)).unwrap();
        let (_, r) = FileJournal::open(&path).unwrap();
        assert_eq!(r.last_tick, Some(1));
        assert_eq!(
            r.cut.as_deref(),
            Some("line 2: checksum mismatch: cut off with what follows")
        );
    }

    #[test]
    fn a_long_journal_is_compacted_to_the_state_it_holds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.log");
        let (j, _) = FileJournal::open(&path).unwrap();
        let mut old = crate::incident::Incident::new("inc-old", 0, crate::model::Severity::High);
        old.resolved_at = Some(10);
        j.append(&Entry::Incident(Box::new(old.clone())), false)
            .unwrap();
        old.id = "inc-open".into();
        old.resolved_at = None;
        j.append(&Entry::Incident(Box::new(old.clone())), false)
            .unwrap();
        j.append(&intent(2), true).unwrap();
        let last = 10 + crate::trust::MAX_WINDOW + COMPACT_AFTER as i64;
        // A step's record from before the longest earning window, and one
        // from within it.
        j.append(&ledger(0), false).unwrap();
        j.append(&ledger(last - 10), false).unwrap();
        for at in (last - COMPACT_AFTER as i64)..=last {
            j.append(&Entry::Tick { at }, false).unwrap();
        }
        drop(j);
        let (j, r) = FileJournal::open(&path).unwrap();
        // The resolved incident is a week old: left out. The open one and
        // the step with no result stay.
        let ids: Vec<&str> = r.incidents.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, vec!["inc-open"]);
        assert_eq!(r.unfinished.len(), 1);
        assert_eq!(r.last_tick, Some(last));
        let kept: Vec<i64> = r.ledger.iter().map(|e| e.at).collect();
        assert_eq!(kept, vec![last - 10]);
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 4);
        // It appends after the compacted records, and reads back the same.
        j.append(&Entry::Tick { at: last + 30 }, true).unwrap();
        drop(j);
        let (_, again) = FileJournal::open(&path).unwrap();
        assert_eq!(again.incidents, r.incidents);
        assert_eq!(again.unfinished, r.unfinished);
        assert_eq!(again.ledger, r.ledger);
        assert_eq!(again.last_tick, Some(last + 30));
    }

    fn ledger(at: i64) -> Entry {
        Entry::Ledger(crate::trust::LedgerEntry {
            at,
            key: crate::trust::StepKey {
                playbook: "pool".into(),
                step: 2,
                action: Action::RolloutRestart,
                target_kind: "Deployment".into(),
            },
            event: crate::trust::Event::Approved,
            incident: "inc-1".into(),
            by: Some("alice".into()),
            digest: Some("d1".into()),
        })
    }

    #[test]
    fn a_journal_written_before_the_ledger_existed_reads_with_an_empty_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.log");
        // Lines as an older medic wrote them: no ledger records.
        let inc = crate::incident::Incident::new("inc-1", 100, crate::model::Severity::High);
        let mut text = String::new();
        for entry in [
            Entry::Incident(Box::new(inc)),
            intent(1),
            Entry::Tick { at: 130 },
        ] {
            text.push_str(&encode(&entry).unwrap());
        }
        std::fs::write(&path, &text).unwrap();
        let (j, r) = FileJournal::open(&path).unwrap();
        assert_eq!((r.incidents.len(), r.unfinished.len()), (1, 1));
        assert!(r.ledger.is_empty());
        // The ledger is appended to it and read back in order.
        j.append(&ledger(140), false).unwrap();
        j.append(&ledger(150), true).unwrap();
        drop(j);
        let (_, r) = FileJournal::open(&path).unwrap();
        let at: Vec<i64> = r.ledger.iter().map(|e| e.at).collect();
        assert_eq!(at, vec![140, 150]);
    }

    #[test]
    fn a_read_only_look_reports_a_torn_tail_and_leaves_the_file_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.log");
        let torn = format!("{}{{\"type\":\"tick\"", encode(&ledger(140)).unwrap());
        std::fs::write(&path, &torn).unwrap();
        let r = FileJournal::read(&path).unwrap();
        assert_eq!(r.ledger.len(), 1);
        assert!(r.cut.as_deref().unwrap().contains("torn"), "{:?}", r.cut);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), torn, "untouched");
    }
}
