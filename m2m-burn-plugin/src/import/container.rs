//! The three file layouts a PyTorch state dict arrives in, read into one shape: a value
//! tree (what the pickle, or the safetensors header, says) plus the raw bytes of every
//! storage, each checked against the file before it is used.
//!
//! - legacy `torch.save` (torch < 1.6, M2m's `.t7` files): consecutive pickles (magic
//!   number, protocol, system info, the object, the storage keys), then per storage an
//!   8-byte element count and its bytes;
//! - zip (torch >= 1.6, `.pt`/`.pth`): `<dir>/data.pkl` and `<dir>/data/<key>`, read with
//!   the `zip` crate (stored entries, as torch writes them);
//! - safetensors, read with the `safetensors` crate (which validates header and offsets).

use std::collections::HashMap;
use std::io::Read;

use super::pickle::{self, DType, StorageRef, TensorRef, Value};
use super::ErrorKind;

/// The formats we read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Format {
    /// torch < 1.6 `torch.save` (consecutive pickles), e.g. M2m's `.t7` files.
    TorchLegacy,
    /// torch >= 1.6 `torch.save` (a zip archive).
    TorchZip,
    /// A safetensors file (`.safetensors`), as written by the `safetensors` library.
    Safetensors,
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Format::TorchLegacy => "PyTorch legacy serialisation (torch < 1.6)",
            Format::TorchZip => "PyTorch zip serialisation (torch >= 1.6)",
            Format::Safetensors => "safetensors",
        })
    }
}

/// The legacy format's first pickle: PROTO 2, LONG1 of the 10-byte magic number, STOP.
const LEGACY_MAGIC: [u8; 15] =
    [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e];

/// Recognises a format from the first bytes of a file.
pub fn sniff(head: &[u8]) -> Option<Format> {
    if head.starts_with(b"PK\x03\x04") {
        Some(Format::TorchZip)
    } else if head.starts_with(&LEGACY_MAGIC) {
        Some(Format::TorchLegacy)
    } else if head.len() >= 9 && head[8] == b'{' {
        // safetensors: an 8-byte little-endian header length, then a JSON object.
        Some(Format::Safetensors)
    } else {
        None
    }
}

/// A checkpoint file read and checked: its value tree and the bytes of its storages.
pub struct Container {
    /// The layout the file was read in.
    pub format: Format,
    /// The saved object: the unpickled value tree, or for safetensors a dict of its tensors
    /// by name.
    pub root: Value,
    storages: HashMap<String, Vec<u8>>,
}

/// A tensor decoded to `f32` (integers and other float widths converted).
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// The element type the tensor had in the file, before conversion to `f32`.
    pub dtype: DType,
    /// The tensor's dimensions, outermost first (as in torch).
    pub shape: Vec<usize>,
    /// The elements in row-major order of `shape`, converted to `f32`.
    pub values: Vec<f32>,
}

impl Decoded {
    /// A 2-D tensor transposed, laid out contiguously (torch's `Linear` weight is
    /// `[out, in]`, burn's `[in, out]`; a strided view would change the summation order).
    pub fn transposed(&self) -> Decoded {
        assert_eq!(self.shape.len(), 2, "only matrices are transposed");
        let (rows, cols) = (self.shape[0], self.shape[1]);
        let values = (0..cols).flat_map(|c| (0..rows).map(move |r| r * cols + c)).map(|i| self.values[i]).collect();
        Decoded { dtype: self.dtype, shape: vec![cols, rows], values }
    }
}

impl Container {
    /// Reads a checkpoint from the bytes of a file.
    pub fn parse(bytes: &[u8]) -> Result<Container, ErrorKind> {
        match sniff(bytes) {
            Some(Format::TorchLegacy) => read_legacy(bytes),
            Some(Format::TorchZip) => read_zip(bytes),
            Some(Format::Safetensors) => read_safetensors(bytes),
            None => Err(ErrorKind::UnknownFormat { first_bytes: bytes.iter().take(16).copied().collect() }),
        }
    }

    /// The tensor a `TensorRef` views, bounds-checked against its storage.
    pub fn decode(&self, t: &TensorRef) -> Result<Decoded, ErrorKind> {
        let s = &t.storage;
        let bytes = self
            .storages
            .get(&s.key)
            .ok_or_else(|| ErrorKind::Malformed(format!("storage {:?} is not in the file", s.key)))?;
        let size = s.dtype.size();
        if s.numel.checked_mul(size).is_none_or(|need| need > bytes.len()) {
            return Err(ErrorKind::Truncated(format!(
                "storage {:?} declares {} elements of {} bytes, the file holds {} bytes",
                s.key,
                s.numel,
                size,
                bytes.len()
            )));
        }
        let count = t.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        let count = count.ok_or_else(|| ErrorKind::Malformed(format!("tensor of shape {:?} overflows", t.shape)))?;
        if count == 0 {
            return Ok(Decoded { dtype: s.dtype, shape: t.shape.clone(), values: Vec::new() });
        }
        if count > s.numel {
            return Err(ErrorKind::Malformed(format!(
                "a tensor of shape {:?} views storage {:?} of only {} elements (broadcast views are not supported)",
                t.shape, s.key, s.numel
            )));
        }
        let last = t
            .shape
            .iter()
            .zip(&t.stride)
            .try_fold(t.offset, |acc, (&d, &st)| (d - 1).checked_mul(st).and_then(|x| acc.checked_add(x)));
        if last.is_none_or(|l| l >= s.numel) {
            return Err(ErrorKind::Malformed(format!(
                "a tensor of shape {:?} (offset {}, stride {:?}) reaches past storage {:?} of {} elements",
                t.shape, t.offset, t.stride, s.key, s.numel
            )));
        }
        let mut values = Vec::with_capacity(count);
        let mut index = vec![0usize; t.shape.len()];
        for _ in 0..count {
            let at = t.offset + index.iter().zip(&t.stride).map(|(i, st)| i * st).sum::<usize>();
            values.push(element(&bytes[at * size..(at + 1) * size], s.dtype));
            for d in (0..index.len()).rev() {
                index[d] += 1;
                if index[d] < t.shape[d] {
                    break;
                }
                index[d] = 0;
            }
        }
        Ok(Decoded { dtype: s.dtype, shape: t.shape.clone(), values })
    }
}

fn element(b: &[u8], dtype: DType) -> f32 {
    match dtype {
        DType::F64 => f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32,
        DType::F32 => f32::from_le_bytes(b.try_into().expect("4 bytes")),
        DType::F16 => half::f16::from_le_bytes(b.try_into().expect("2 bytes")).to_f32(),
        DType::BF16 => half::bf16::from_le_bytes(b.try_into().expect("2 bytes")).to_f32(),
        DType::I64 => i64::from_le_bytes(b.try_into().expect("8 bytes")) as f32,
        DType::I32 => i32::from_le_bytes(b.try_into().expect("4 bytes")) as f32,
        DType::I16 => i16::from_le_bytes(b.try_into().expect("2 bytes")) as f32,
        DType::I8 => b[0] as i8 as f32,
        DType::U8 | DType::Bool => b[0] as f32,
    }
}

/// Values a pickle of `len` bytes may build, memoised copies included: generous for any
/// real checkpoint, small enough that a hostile file cannot exhaust memory.
fn value_budget(len: usize) -> usize {
    len.saturating_mul(4).saturating_add(1 << 20)
}

fn pickle_err(what: &str, e: pickle::PickleError) -> ErrorKind {
    match e {
        pickle::PickleError::Truncated(_) => ErrorKind::Truncated(format!("{what}: {e}")),
        _ => ErrorKind::Malformed(format!("{what}: {e}")),
    }
}

fn read_legacy(bytes: &[u8]) -> Result<Container, ErrorKind> {
    let mut budget = value_budget(bytes.len());
    let mut pos = 0;
    let mut next = |what: &str, pos: &mut usize| -> Result<Value, ErrorKind> {
        let (v, end) = pickle::read(bytes, *pos, &mut budget).map_err(|e| pickle_err(what, e))?;
        *pos = end;
        Ok(v)
    };
    next("magic number", &mut pos)?;
    let protocol = next("protocol version", &mut pos)?;
    if protocol.as_int() != Some(1001) {
        return Err(ErrorKind::Malformed(format!("legacy protocol {protocol:?}, expected 1001")));
    }
    let info = next("system information", &mut pos)?;
    if matches!(info.get("little_endian"), Some(Value::Bool(false))) {
        return Err(ErrorKind::Unsupported("the file was written on a big-endian machine".into()));
    }
    let root = next("the saved object", &mut pos)?;
    let keys = match next("the storage keys", &mut pos)? {
        Value::List(keys) => keys,
        other => return Err(ErrorKind::Malformed(format!("the storage key list is a {other:?}"))),
    };
    let mut dtypes = HashMap::new();
    collect_storages(&root, &mut dtypes);
    let mut storages = HashMap::new();
    for key in keys {
        let Value::Str(key) = key else {
            return Err(ErrorKind::Malformed("a storage key is not a string".into()));
        };
        let Some(dtype) = dtypes.get(&key) else {
            return Err(ErrorKind::Malformed(format!("storage {key:?} is listed but no tensor uses it")));
        };
        let head = bytes
            .get(pos..pos + 8)
            .ok_or_else(|| ErrorKind::Truncated(format!("the file ends before storage {key:?}")))?;
        let numel = u64::from_le_bytes(head.try_into().expect("8 bytes"));
        pos += 8;
        let len =
            numel.checked_mul(dtype.size() as u64).filter(|&n| n <= (bytes.len() - pos) as u64).ok_or_else(|| {
                ErrorKind::Truncated(format!(
                    "storage {key:?} needs {numel} elements of {} bytes, only {} bytes are left",
                    dtype.size(),
                    bytes.len() - pos
                ))
            })? as usize;
        storages.insert(key, bytes[pos..pos + len].to_vec());
        pos += len;
    }
    Ok(Container { format: Format::TorchLegacy, root, storages })
}

/// Storage keys and types used anywhere in a value tree.
fn collect_storages(v: &Value, out: &mut HashMap<String, DType>) {
    match v {
        Value::Tensor(t) => {
            out.insert(t.storage.key.clone(), t.storage.dtype);
        }
        Value::Storage(s) => {
            out.insert(s.key.clone(), s.dtype);
        }
        Value::List(items) | Value::Tuple(items) => items.iter().for_each(|x| collect_storages(x, out)),
        Value::Dict(items) => items.iter().for_each(|(k, x)| {
            collect_storages(k, out);
            collect_storages(x, out)
        }),
        _ => {}
    }
}

fn read_zip(bytes: &[u8]) -> Result<Container, ErrorKind> {
    let zip_err = |e: zip::result::ZipError| ErrorKind::Malformed(format!("zip archive: {e}"));
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(zip_err)?;
    let names: Vec<String> = archive.file_names().map(str::to_string).collect();
    let pkl = names
        .iter()
        .find(|n| n.as_str() == "data.pkl" || n.ends_with("/data.pkl"))
        .ok_or_else(|| ErrorKind::Malformed("the zip archive holds no data.pkl: not a torch.save file".into()))?
        .clone();
    let prefix = pkl.trim_end_matches("data.pkl").to_string();
    let mut read_entry = |name: &str| -> Result<Vec<u8>, ErrorKind> {
        let mut entry = archive.by_name(name).map_err(zip_err)?;
        let size = entry.size();
        // Stored entries cannot be larger than the archive; a compressed one may claim anything.
        if size > bytes.len() as u64 {
            return Err(ErrorKind::Malformed(format!(
                "entry {name} claims {size} bytes in an archive of {}",
                bytes.len()
            )));
        }
        let mut out = Vec::with_capacity(size as usize);
        entry
            .by_ref()
            .take(size)
            .read_to_end(&mut out)
            .map_err(|e| ErrorKind::Truncated(format!("entry {name}: {e}")))?;
        if out.len() as u64 != size {
            return Err(ErrorKind::Truncated(format!("entry {name} holds {} of its {size} bytes", out.len())));
        }
        Ok(out)
    };
    let pickle_bytes = read_entry(&pkl)?;
    let mut budget = value_budget(bytes.len());
    let (root, _) = pickle::read(&pickle_bytes, 0, &mut budget).map_err(|e| pickle_err(&pkl, e))?;
    let mut used = HashMap::new();
    collect_storages(&root, &mut used);
    let mut storages = HashMap::new();
    for key in used.keys() {
        let name = format!("{prefix}data/{key}");
        if !names.contains(&name) {
            return Err(ErrorKind::Truncated(format!("storage {key:?} ({name}) is missing from the archive")));
        }
        storages.insert(key.clone(), read_entry(&name)?);
    }
    Ok(Container { format: Format::TorchZip, root, storages })
}

fn read_safetensors(bytes: &[u8]) -> Result<Container, ErrorKind> {
    use safetensors::Dtype as S;
    let st = safetensors::SafeTensors::deserialize(bytes).map_err(|e| match e {
        safetensors::SafeTensorError::MetadataIncompleteBuffer | safetensors::SafeTensorError::HeaderTooSmall => {
            ErrorKind::Truncated(format!("safetensors: {e}"))
        }
        _ => ErrorKind::Malformed(format!("safetensors: {e}")),
    })?;
    let mut items = Vec::new();
    let mut storages = HashMap::new();
    let mut names: Vec<String> = st.names().into_iter().map(str::to_string).collect();
    names.sort();
    for name in names {
        let view = st.tensor(&name).map_err(|e| ErrorKind::Malformed(format!("safetensors tensor {name}: {e}")))?;
        let dtype = match view.dtype() {
            S::F64 => DType::F64,
            S::F32 => DType::F32,
            S::F16 => DType::F16,
            S::BF16 => DType::BF16,
            S::I64 => DType::I64,
            S::I32 => DType::I32,
            S::I16 => DType::I16,
            S::I8 => DType::I8,
            S::U8 => DType::U8,
            S::BOOL => DType::Bool,
            other => return Err(ErrorKind::Unsupported(format!("tensor {name} has element type {other:?}"))),
        };
        let shape = view.shape().to_vec();
        let numel = view.data().len() / dtype.size();
        let mut stride = vec![1usize; shape.len()];
        for d in (0..shape.len().saturating_sub(1)).rev() {
            stride[d] = stride[d + 1] * shape[d + 1];
        }
        storages.insert(name.clone(), view.data().to_vec());
        let tensor = TensorRef { storage: StorageRef { key: name.clone(), dtype, numel }, offset: 0, shape, stride };
        items.push((Value::Str(name), Value::Tensor(tensor)));
    }
    Ok(Container { format: Format::Safetensors, root: Value::Dict(items), storages })
}
