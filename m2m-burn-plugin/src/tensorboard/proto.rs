//! Hand-written prost messages: the subset of TensorFlow/TensorBoard's .proto
//! files that an event writer needs. Field numbers and types are copied from
//! tensorboard/compat/proto/{event,summary,tensor,tensor_shape,types}.proto,
//! tensorboard/plugins/hparams/{api,plugin_data}.proto and
//! google/protobuf/struct.proto (checked against the descriptors shipped in the
//! `tensorboard` 2.21 wheel). Fields we never write are left out: protobuf
//! readers do not care about absent fields.
//!
//! No build.rs, no protoc: `#[derive(prost::Message)]` does the encoding.
//!
//! Type and variant names follow the .proto files (`DT_FLOAT` is `DtFloat`), so that each
//! can be found there; clippy's naming lint is off for that reason.
#![allow(clippy::enum_variant_names)]

use std::collections::BTreeMap;

// ---------------------------------------------------------------- event.proto

/// `tensorboard.Event`
#[derive(Clone, PartialEq, prost::Message)]
pub struct Event {
    /// Seconds since the Unix epoch (fractional).
    #[prost(double, tag = "1")]
    pub wall_time: f64,
    #[prost(int64, tag = "2")]
    pub step: i64,
    #[prost(oneof = "event::What", tags = "3, 5")]
    pub what: Option<event::What>,
}

pub mod event {
    /// `oneof what` (only the two members we write; 4 graph_def, 6 log_message,
    /// 7 session_log, 8 tagged_run_metadata, 9 meta_graph_def are left out).
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum What {
        /// "brain.Event:2"
        #[prost(string, tag = "3")]
        FileVersion(String),
        #[prost(message, tag = "5")]
        Summary(super::Summary),
    }
}

// -------------------------------------------------------------- summary.proto

/// `tensorboard.Summary`
#[derive(Clone, PartialEq, prost::Message)]
pub struct Summary {
    #[prost(message, repeated, tag = "1")]
    pub value: Vec<summary::Value>,
}

pub mod summary {
    /// `tensorboard.Summary.Value`
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Value {
        #[prost(string, tag = "1")]
        pub tag: String,
        #[prost(message, optional, tag = "9")]
        pub metadata: Option<super::SummaryMetadata>,
        #[prost(oneof = "value::Value", tags = "2, 4, 8")]
        pub value: Option<value::Value>,
    }

    pub mod value {
        /// `oneof value` (3 obsolete histogram, 5 histo, 6 audio left out).
        #[derive(Clone, PartialEq, prost::Oneof)]
        pub enum Value {
            #[prost(float, tag = "2")]
            SimpleValue(f32),
            #[prost(message, tag = "4")]
            Image(super::Image),
            #[prost(message, tag = "8")]
            Tensor(super::super::TensorProto),
        }
    }

    /// `tensorboard.Summary.Image`
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Image {
        #[prost(int32, tag = "1")]
        pub height: i32,
        #[prost(int32, tag = "2")]
        pub width: i32,
        /// 1 grayscale, 2 grayscale+alpha, 3 RGB, 4 RGBA, 5 DIGITAL_YUV, 6 BGRA
        #[prost(int32, tag = "3")]
        pub colorspace: i32,
        /// PNG (or JPEG/GIF) file bytes.
        #[prost(bytes = "vec", tag = "4")]
        pub encoded_image_string: Vec<u8>,
    }
}

/// `tensorboard.SummaryMetadata`
#[derive(Clone, PartialEq, prost::Message)]
pub struct SummaryMetadata {
    #[prost(message, optional, tag = "1")]
    pub plugin_data: Option<summary_metadata::PluginData>,
    #[prost(string, tag = "2")]
    pub display_name: String,
    #[prost(string, tag = "3")]
    pub summary_description: String,
    #[prost(enumeration = "DataClass", tag = "4")]
    pub data_class: i32,
}

pub mod summary_metadata {
    /// `tensorboard.SummaryMetadata.PluginData`
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PluginData {
        #[prost(string, tag = "1")]
        pub plugin_name: String,
        /// Plugin-specific serialized proto (e.g. HParamsPluginData).
        #[prost(bytes = "vec", tag = "2")]
        pub content: Vec<u8>,
    }
}

/// `tensorboard.DataClass`
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum DataClass {
    Unknown = 0,
    Scalar = 1,
    Tensor = 2,
    BlobSequence = 3,
}

// ---------------------------------------------- tensor.proto / tensor_shape.proto

/// `tensorboard.TensorProto`
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorProto {
    #[prost(enumeration = "DataType", tag = "1")]
    pub dtype: i32,
    #[prost(message, optional, tag = "2")]
    pub tensor_shape: Option<TensorShapeProto>,
    #[prost(float, repeated, tag = "5")]
    pub float_val: Vec<f32>,
    #[prost(bytes = "vec", repeated, tag = "8")]
    pub string_val: Vec<Vec<u8>>,
}

/// `tensorboard.TensorShapeProto` (no dims = rank-0 scalar)
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorShapeProto {
    #[prost(message, repeated, tag = "2")]
    pub dim: Vec<tensor_shape_proto::Dim>,
}

pub mod tensor_shape_proto {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Dim {
        #[prost(int64, tag = "1")]
        pub size: i64,
    }
}

/// `tensorboard.DataType` (types.proto), the members we use. (DT_DOUBLE = 2
/// exists, but TensorBoard's Rust data server ignores DT_DOUBLE scalars.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum DataType {
    DtInvalid = 0,
    DtFloat = 1,
    DtString = 7,
}

// ------------------------------------------------------ google/protobuf/struct.proto

/// `google.protobuf.Value` (struct_value = 5 left out)
#[derive(Clone, PartialEq, prost::Message)]
pub struct PbValue {
    #[prost(oneof = "pb_value::Kind", tags = "1, 2, 3, 4, 6")]
    pub kind: Option<pb_value::Kind>,
}

pub mod pb_value {
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Kind {
        /// google.protobuf.NullValue enum, only member NULL_VALUE = 0
        #[prost(int32, tag = "1")]
        NullValue(i32),
        #[prost(double, tag = "2")]
        NumberValue(f64),
        #[prost(string, tag = "3")]
        StringValue(String),
        #[prost(bool, tag = "4")]
        BoolValue(bool),
        #[prost(message, tag = "6")]
        ListValue(super::PbListValue),
    }
}

/// `google.protobuf.ListValue`
#[derive(Clone, PartialEq, prost::Message)]
pub struct PbListValue {
    #[prost(message, repeated, tag = "1")]
    pub values: Vec<PbValue>,
}

// ------------------------------------ plugins/hparams/{plugin_data,api}.proto

/// `tensorboard.hparams.HParamsPluginData`
#[derive(Clone, PartialEq, prost::Message)]
pub struct HParamsPluginData {
    /// PLUGIN_DATA_VERSION, currently 0.
    #[prost(int32, tag = "1")]
    pub version: i32,
    #[prost(oneof = "h_params_plugin_data::Data", tags = "2, 3, 4")]
    pub data: Option<h_params_plugin_data::Data>,
}

pub mod h_params_plugin_data {
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Data {
        #[prost(message, tag = "2")]
        Experiment(super::Experiment),
        #[prost(message, tag = "3")]
        SessionStartInfo(super::SessionStartInfo),
        #[prost(message, tag = "4")]
        SessionEndInfo(super::SessionEndInfo),
    }
}

/// `tensorboard.hparams.Experiment`
#[derive(Clone, PartialEq, prost::Message)]
pub struct Experiment {
    #[prost(string, tag = "6")]
    pub name: String,
    #[prost(string, tag = "1")]
    pub description: String,
    #[prost(string, tag = "2")]
    pub user: String,
    #[prost(double, tag = "3")]
    pub time_created_secs: f64,
    #[prost(message, repeated, tag = "4")]
    pub hparam_infos: Vec<HParamInfo>,
    #[prost(message, repeated, tag = "5")]
    pub metric_infos: Vec<MetricInfo>,
}

/// `tensorboard.hparams.HParamInfo`
#[derive(Clone, PartialEq, prost::Message)]
pub struct HParamInfo {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub display_name: String,
    #[prost(string, tag = "3")]
    pub description: String,
    #[prost(enumeration = "HParamDataType", tag = "4")]
    pub r#type: i32,
}

/// `tensorboard.hparams.DataType`
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum HParamDataType {
    Unset = 0,
    String = 1,
    Bool = 2,
    Float64 = 3,
}

/// `tensorboard.hparams.MetricInfo`
#[derive(Clone, PartialEq, prost::Message)]
pub struct MetricInfo {
    #[prost(message, optional, tag = "1")]
    pub name: Option<MetricName>,
    #[prost(string, tag = "3")]
    pub display_name: String,
    #[prost(string, tag = "4")]
    pub description: String,
    /// DatasetType: 0 DATASET_UNKNOWN, 1 DATASET_TRAINING, 2 DATASET_VALIDATION
    #[prost(int32, tag = "5")]
    pub dataset_type: i32,
}

/// `tensorboard.hparams.MetricName`: the scalar series `tag` in run
/// `<session run>/<group>` (group "" = the session run itself).
#[derive(Clone, PartialEq, prost::Message)]
pub struct MetricName {
    #[prost(string, tag = "1")]
    pub group: String,
    #[prost(string, tag = "2")]
    pub tag: String,
}

/// `tensorboard.hparams.SessionStartInfo`
#[derive(Clone, PartialEq, prost::Message)]
pub struct SessionStartInfo {
    /// map<string, google.protobuf.Value>
    #[prost(btree_map = "string, message", tag = "1")]
    pub hparams: BTreeMap<String, PbValue>,
    #[prost(string, tag = "2")]
    pub model_uri: String,
    #[prost(string, tag = "3")]
    pub monitor_url: String,
    #[prost(string, tag = "4")]
    pub group_name: String,
    #[prost(double, tag = "5")]
    pub start_time_secs: f64,
}

/// `tensorboard.hparams.SessionEndInfo`
#[derive(Clone, PartialEq, prost::Message)]
pub struct SessionEndInfo {
    #[prost(enumeration = "SessionStatus", tag = "1")]
    pub status: i32,
    #[prost(double, tag = "2")]
    pub end_time_secs: f64,
}

/// `tensorboard.hparams.Status`
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum SessionStatus {
    Unknown = 0,
    Success = 1,
    Failure = 2,
    Running = 3,
}
