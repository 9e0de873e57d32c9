//! TensorBoard's event files: TFRecord framing (length, masked CRC-32C of the length,
//! data, masked CRC-32C of the data) around prost-encoded `Event` messages ([`super::proto`]).
//! One [`EventWriter`] is one `events.out.tfevents.*` file of one TensorBoard run.

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use prost::Message;

use super::proto::summary::value::Value as ValueKind;
use super::proto::{
    self, event::What, h_params_plugin_data::Data, pb_value::Kind, summary_metadata::PluginData, DataClass, DataType,
    Event, Experiment, HParamInfo, HParamsPluginData, MetricInfo, MetricName, PbValue, SessionEndInfo,
    SessionStartInfo, Summary, SummaryMetadata, TensorProto, TensorShapeProto,
};

pub use super::proto::SessionStatus;

// ------------------------------------------------------------ record framing

/// CRC-32C (Castagnoli); `CRC_32_ISCSI` is that polynomial (0x1EDC6F41, reflected).
const CRC32C: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// TFRecord's masked CRC: rotate right by 15 bits, add a constant.
pub fn masked_crc32c(data: &[u8]) -> u32 {
    CRC32C.checksum(data).rotate_right(15).wrapping_add(0xa282_ead8)
}

/// One TFRecord: u64 LE length, masked CRC of those 8 bytes (u32 LE), data,
/// masked CRC of the data (u32 LE).
pub fn frame_record(data: &[u8]) -> Vec<u8> {
    let len = (data.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc32c(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc32c(data).to_le_bytes());
    out
}

/// The wall-clock time in seconds since the Unix epoch (fractional), as events record it;
/// 0 if the clock is before 1970.
pub fn now_secs() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

// ------------------------------------------------------------ plugin metadata

/// The plugin name of TensorBoard's Text dashboard.
pub const TEXT_PLUGIN: &str = "text";
/// The plugin name of TensorBoard's HParams dashboard.
pub const HPARAMS_PLUGIN: &str = "hparams";
/// The tag the hparams experiment (columns of the HParams view) is written under.
pub const HPARAMS_EXPERIMENT_TAG: &str = "_hparams_/experiment";
/// The tag of a run's hparams values (the session start).
pub const HPARAMS_SESSION_START_TAG: &str = "_hparams_/session_start_info";
/// The tag of a run's end and its status (the session end).
pub const HPARAMS_SESSION_END_TAG: &str = "_hparams_/session_end_info";

fn metadata(plugin: &str, content: Vec<u8>, class: DataClass) -> SummaryMetadata {
    SummaryMetadata {
        plugin_data: Some(PluginData { plugin_name: plugin.to_string(), content }),
        data_class: class as i32,
        ..Default::default()
    }
}

fn shape(dims: &[i64]) -> Option<TensorShapeProto> {
    Some(TensorShapeProto { dim: dims.iter().map(|&size| proto::tensor_shape_proto::Dim { size }).collect() })
}

// ------------------------------------------------------------ hparams helpers

/// A hyperparameter value (google.protobuf.Value: number, string or bool).
#[derive(Clone, Debug, PartialEq)]
pub enum HParamValue {
    /// A number (integers too: protobuf's `Value` has only doubles).
    Number(f64),
    /// A string.
    Str(String),
    /// A boolean.
    Bool(bool),
}

impl HParamValue {
    fn to_pb(&self) -> PbValue {
        let kind = match self {
            HParamValue::Number(v) => Kind::NumberValue(*v),
            HParamValue::Str(s) => Kind::StringValue(s.clone()),
            HParamValue::Bool(b) => Kind::BoolValue(*b),
        };
        PbValue { kind: Some(kind) }
    }
}

/// A hyperparameter column of the HParams view.
#[derive(Clone, Debug)]
pub struct HParamSpec {
    /// The hyperparameter's name, as in the sessions' values (e.g. `optimizer.lr`).
    pub name: String,
    /// A description shown in the view ("" for none).
    pub description: String,
}

/// A metric column of the HParams view: a scalar series of each session's run.
#[derive(Clone, Debug)]
pub struct MetricSpec {
    /// Scalar tag, e.g. "train/loss".
    pub tag: String,
    /// Sub-run relative to the session run ("" = the run itself).
    pub group: String,
    /// The column's title in the HParams view.
    pub display_name: String,
}

// ------------------------------------------------------------ the writer

static FILE_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes one event file. Every record is written with a single `write_all` on
/// an unbuffered `File`, so a record is in the OS page cache as soon as the
/// call returns: a killed process leaves a file that is readable up to its last
/// complete record (a torn trailing record is ignored by TensorBoard's readers).
pub struct EventWriter {
    file: File,
    path: PathBuf,
    /// Tags that already carried their SummaryMetadata in this file
    /// (TensorBoard keeps only the first metadata per tag).
    tags_with_metadata: HashSet<String>,
}

impl EventWriter {
    /// Creates `logdir` (= one TensorBoard run) and a new
    /// `events.out.tfevents.<secs>.<host>.<pid>.<n>` file in it, and writes the
    /// `brain.Event:2` file_version event.
    pub fn create(logdir: impl AsRef<Path>) -> io::Result<Self> {
        let logdir = logdir.as_ref();
        fs::create_dir_all(logdir)?;
        let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let host = crate::fs::host_name().replace(['/', '\\'], "_");
        let n = FILE_COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("events.out.tfevents.{secs}.{host}.{}.{n}", std::process::id());
        let path = logdir.join(name);
        let file = File::options().create_new(true).append(true).open(&path)?;
        let mut w = EventWriter { file, path, tags_with_metadata: HashSet::new() };
        w.write_event(&Event {
            wall_time: now_secs(),
            step: 0,
            what: Some(What::FileVersion("brain.Event:2".to_string())),
        })?;
        Ok(w)
    }

    /// The event file this writer appends to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Encodes, frames and writes one event (one syscall).
    pub fn write_event(&mut self, event: &Event) -> io::Result<()> {
        self.file.write_all(&frame_record(&event.encode_to_vec()))
    }

    /// Writes a Summary with one value, attaching `meta` only the first time
    /// the tag is seen in this file.
    fn write_value(
        &mut self,
        tag: &str,
        step: i64,
        wall_time: f64,
        meta: Option<SummaryMetadata>,
        value: ValueKind,
    ) -> io::Result<()> {
        let metadata = match meta {
            Some(m) if self.tags_with_metadata.insert(tag.to_string()) => Some(m),
            _ => None,
        };
        let v = proto::summary::Value { tag: tag.to_string(), metadata, value: Some(value) };
        self.write_event(&Event { wall_time, step, what: Some(What::Summary(Summary { value: vec![v] })) })
    }

    /// Legacy scalar: `Summary.Value.simple_value` (f32). This is what
    /// `EventAccumulator.Scalars()` returns; the TensorBoard server converts it
    /// to a "scalars"-plugin tensor itself.
    pub fn add_scalar(&mut self, tag: &str, value: f32, step: i64) -> io::Result<()> {
        self.write_value(tag, step, now_secs(), None, ValueKind::SimpleValue(value))
    }

    /// Image from encoded PNG/JPEG bytes (legacy `Summary.Image`; the server
    /// migrates it to the "images" plugin). `channels`: 1 gray, 3 RGB, 4 RGBA.
    pub fn add_image_png(
        &mut self,
        tag: &str,
        png: &[u8],
        width: u32,
        height: u32,
        channels: u8,
        step: i64,
    ) -> io::Result<()> {
        let img = proto::summary::Image {
            height: height as i32,
            width: width as i32,
            colorspace: channels as i32,
            encoded_image_string: png.to_vec(),
        };
        self.write_value(tag, step, now_secs(), None, ValueKind::Image(img))
    }

    /// Text (markdown) for the Text dashboard: rank-0 DT_STRING tensor +
    /// plugin "text" metadata (TextPluginData version 0 = empty content).
    pub fn add_text(&mut self, tag: &str, text: &str, step: i64) -> io::Result<()> {
        let t = TensorProto {
            dtype: DataType::DtString as i32,
            tensor_shape: shape(&[]),
            string_val: vec![text.as_bytes().to_vec()],
            ..Default::default()
        };
        let meta = metadata(TEXT_PLUGIN, Vec::new(), DataClass::Tensor);
        self.write_value(tag, step, now_secs(), Some(meta), ValueKind::Tensor(t))
    }

    /// hparams summaries carry everything in SummaryMetadata.plugin_data.content
    /// (a serialized HParamsPluginData); the tensor is the plugin's NULL_TENSOR
    /// (DT_FLOAT, shape [0]), so the value lists as a "hparams" tensor series.
    fn write_hparams(&mut self, tag: &str, data: Data) -> io::Result<()> {
        let content = HParamsPluginData { version: 0, data: Some(data) }.encode_to_vec();
        let meta = metadata(HPARAMS_PLUGIN, content, DataClass::Tensor);
        let null_tensor =
            TensorProto { dtype: DataType::DtFloat as i32, tensor_shape: shape(&[0]), ..Default::default() };
        // Bypass the first-metadata-only rule: the content IS the payload.
        self.tags_with_metadata.remove(tag);
        self.write_value(tag, 0, now_secs(), Some(meta), ValueKind::Tensor(null_tensor))
    }

    /// Experiment config (`_hparams_/experiment`): which hparams and which
    /// metric columns the HParams dashboard shows. TensorBoard uses the first
    /// one it finds in any run, so write the same one everywhere (or once in
    /// the logdir root).
    pub fn add_hparams_config(&mut self, hparams: &[HParamSpec], metrics: &[MetricSpec]) -> io::Result<()> {
        let hparam_infos = hparams
            .iter()
            .map(|h| HParamInfo { name: h.name.clone(), description: h.description.clone(), ..Default::default() })
            .collect();
        let metric_infos = metrics
            .iter()
            .map(|m| MetricInfo {
                name: Some(MetricName { group: m.group.clone(), tag: m.tag.clone() }),
                display_name: m.display_name.clone(),
                ..Default::default()
            })
            .collect();
        let exp = Experiment { time_created_secs: now_secs(), hparam_infos, metric_infos, ..Default::default() };
        self.write_hparams(HPARAMS_EXPERIMENT_TAG, Data::Experiment(exp))
    }

    /// Session start (`_hparams_/session_start_info`): this run's hparam values.
    /// The session's name is the run (directory) name; `group_name` "" lets
    /// TensorBoard group sessions with identical hparams itself.
    pub fn add_hparams_session_start(&mut self, values: &[(&str, HParamValue)], group_name: &str) -> io::Result<()> {
        let hparams: BTreeMap<String, PbValue> = values.iter().map(|(k, v)| (k.to_string(), v.to_pb())).collect();
        let start = SessionStartInfo {
            hparams,
            group_name: group_name.to_string(),
            start_time_secs: now_secs(),
            ..Default::default()
        };
        self.write_hparams(HPARAMS_SESSION_START_TAG, Data::SessionStartInfo(start))
    }

    /// Session end (`_hparams_/session_end_info`) with its status.
    pub fn add_hparams_session_end(&mut self, status: SessionStatus) -> io::Result<()> {
        let end = SessionEndInfo { status: status as i32, end_time_secs: now_secs() };
        self.write_hparams(HPARAMS_SESSION_END_TAG, Data::SessionEndInfo(end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_check_value() {
        // CRC-32C check value from the CRC catalogue.
        assert_eq!(CRC32C.checksum(b"123456789"), 0xE306_9283);
    }

    /// The records of an event file, unframed with their CRCs checked.
    fn read_records(bytes: &[u8]) -> Vec<Event> {
        let mut events = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            let len_bytes = &bytes[at..at + 8];
            let len = u64::from_le_bytes(len_bytes.try_into().unwrap()) as usize;
            let crc = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap());
            assert_eq!(crc, masked_crc32c(len_bytes), "length CRC of the record at {at}");
            let data = &bytes[at + 12..at + 12 + len];
            let crc = u32::from_le_bytes(bytes[at + 12 + len..at + 16 + len].try_into().unwrap());
            assert_eq!(crc, masked_crc32c(data), "data CRC of the record at {at}");
            events.push(Event::decode(data).unwrap());
            at += 16 + len;
        }
        events
    }

    #[test]
    fn records_round_trip_through_the_framing() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = EventWriter::create(dir.path()).unwrap();
        w.add_scalar("train/loss", 0.25, 3).unwrap();
        w.add_text("recipe", "lr: 0.1", 0).unwrap();
        w.add_text("recipe", "again", 1).unwrap();
        let events = read_records(&std::fs::read(w.path()).unwrap());
        assert_eq!(events.len(), 4);
        assert_eq!(events[0].what, Some(What::FileVersion("brain.Event:2".into())));
        let Some(What::Summary(s)) = &events[1].what else { panic!("{:?}", events[1]) };
        assert_eq!((events[1].step, s.value[0].tag.as_str()), (3, "train/loss"));
        assert_eq!(s.value[0].value, Some(ValueKind::SimpleValue(0.25)));
        // A tag's metadata goes with its first value only (TensorBoard keeps the first).
        let meta = |e: &Event| match &e.what {
            Some(What::Summary(s)) => s.value[0].metadata.is_some(),
            _ => false,
        };
        assert!(meta(&events[2]) && !meta(&events[3]));
    }

    #[test]
    fn a_torn_last_record_leaves_the_ones_before_readable() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = EventWriter::create(dir.path()).unwrap();
        w.add_scalar("a", 1.0, 0).unwrap();
        let whole = std::fs::read(w.path()).unwrap();
        w.add_scalar("a", 2.0, 1).unwrap();
        let bytes = std::fs::read(w.path()).unwrap();
        // What a process killed in the middle of its last write leaves.
        let torn = &bytes[..bytes.len() - 3];
        assert_eq!(read_records(&torn[..whole.len()]).len(), 2);
        assert!(torn.len() > whole.len(), "the torn record is after the complete ones");
    }

    #[test]
    fn masked_crc_matches_tensorboard() {
        // Expected value computed with TensorBoard's own
        // tensorboard.compat.tensorflow_stub.pywrap_tensorflow.masked_crc32c.
        let len = 24u64.to_le_bytes();
        assert_eq!(masked_crc32c(&len).to_le_bytes(), [0xa3, 0x7f, 0x4b, 0x22]);
    }
}
