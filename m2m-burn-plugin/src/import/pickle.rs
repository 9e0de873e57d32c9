//! A pickle reader for checkpoints from strangers: it builds a value tree and executes
//! nothing. Globals are kept as names; calling one yields an opaque value, except the
//! few constructors a PyTorch state dict needs (`OrderedDict`, `_rebuild_tensor_v2`,
//! `_rebuild_parameter`), which are interpreted, not run. Every length is checked
//! against the bytes that remain before anything is allocated, nesting is bounded, and
//! the work of copying memoised values is budgeted, so a hostile file ends in an error.

use std::collections::HashMap;

/// Element types of torch storages we can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    /// `DoubleStorage`: 64-bit float.
    F64,
    /// `FloatStorage`: 32-bit float.
    F32,
    /// `HalfStorage`: IEEE 16-bit float.
    F16,
    /// `BFloat16Storage`: bfloat16.
    BF16,
    /// `LongStorage`: 64-bit integer.
    I64,
    /// `IntStorage`: 32-bit integer.
    I32,
    /// `ShortStorage`: 16-bit integer.
    I16,
    /// `CharStorage`: 8-bit integer.
    I8,
    /// `ByteStorage`: 8-bit unsigned integer.
    U8,
    /// `BoolStorage`: one byte per element.
    Bool,
}

impl DType {
    /// Bytes per element in the file.
    pub fn size(self) -> usize {
        match self {
            DType::F64 | DType::I64 => 8,
            DType::F32 | DType::I32 => 4,
            DType::F16 | DType::BF16 | DType::I16 => 2,
            DType::I8 | DType::U8 | DType::Bool => 1,
        }
    }

    /// From a torch storage class name (`FloatStorage`, ...).
    pub fn from_storage_name(name: &str) -> Option<DType> {
        Some(match name {
            "DoubleStorage" => DType::F64,
            "FloatStorage" => DType::F32,
            "HalfStorage" => DType::F16,
            "BFloat16Storage" => DType::BF16,
            "LongStorage" => DType::I64,
            "IntStorage" => DType::I32,
            "ShortStorage" => DType::I16,
            "CharStorage" => DType::I8,
            "ByteStorage" => DType::U8,
            "BoolStorage" => DType::Bool,
            _ => return None,
        })
    }

    /// Whether the type is a floating-point one.
    pub fn is_float(self) -> bool {
        matches!(self, DType::F64 | DType::F32 | DType::F16 | DType::BF16)
    }
}

/// A storage named by a persistent id; its bytes live outside the pickle.
#[derive(Debug, Clone, PartialEq)]
pub struct StorageRef {
    pub key: String,
    pub dtype: DType,
    /// Elements in the storage, as the file declares it (checked when read).
    pub numel: usize,
}

/// A tensor view of a storage (`torch._utils._rebuild_tensor_v2`).
#[derive(Debug, Clone, PartialEq)]
pub struct TensorRef {
    pub storage: StorageRef,
    pub offset: usize,
    pub shape: Vec<usize>,
    pub stride: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    List(Vec<Value>),
    Tuple(Vec<Value>),
    /// Insertion-ordered, as Python's dicts.
    Dict(Vec<(Value, Value)>),
    /// `module.name`, never resolved.
    Global(String),
    Storage(StorageRef),
    Tensor(TensorRef),
    /// What calling a global we do not interpret would have produced.
    Opaque(String),
}

impl Value {
    fn type_name(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::Bytes(_) => "bytes",
            Value::List(_) => "list",
            Value::Tuple(_) => "tuple",
            Value::Dict(_) => "dict",
            Value::Global(_) => "global",
            Value::Storage(_) => "storage",
            Value::Tensor(_) => "tensor",
            Value::Opaque(_) => "object",
        }
    }

    /// Nodes in the tree (what a copy of it costs).
    fn nodes(&self) -> usize {
        match self {
            Value::List(v) | Value::Tuple(v) => 1 + v.iter().map(Value::nodes).sum::<usize>(),
            Value::Dict(v) => 1 + v.iter().map(|(k, x)| k.nodes() + x.nodes()).sum::<usize>(),
            Value::Str(s) => 1 + s.len() / 64,
            Value::Bytes(b) => 1 + b.len() / 64,
            Value::Tensor(t) => 1 + t.shape.len(),
            _ => 1,
        }
    }

    fn depth(&self) -> usize {
        match self {
            Value::List(v) | Value::Tuple(v) => 1 + v.iter().map(Value::depth).max().unwrap_or(0),
            Value::Dict(v) => 1 + v.iter().map(|(k, x)| k.depth().max(x.depth())).max().unwrap_or(0),
            _ => 0,
        }
    }

    /// A dict entry by string key.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Dict(items) => {
                items.iter().rev().find(|(k, _)| matches!(k, Value::Str(s) if s == key)).map(|(_, v)| v)
            }
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Bool(b) => Some(*b as i64),
            _ => None,
        }
    }
}

/// How a pickle stream was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PickleError {
    #[error("the pickle stream ends early (at byte {0})")]
    Truncated(usize),
    #[error("at byte {at}: {reason}")]
    Malformed { at: usize, reason: String },
    #[error("at byte {at}: opcode 0x{op:02x} is not supported in checkpoints")]
    Unsupported { at: usize, op: u8 },
}

/// Nested containers deeper than this are refused (a state dict needs a handful).
const MAX_DEPTH: usize = 64;
/// Dimensions of a tensor.
const MAX_RANK: usize = 16;

/// Reads one pickle from `bytes[start..]`; returns the value and the end offset.
/// `budget` bounds the values built (memoised copies included) across calls.
pub fn read(bytes: &[u8], start: usize, budget: &mut usize) -> Result<(Value, usize), PickleError> {
    let mut m = Machine { bytes, pos: start, stack: Vec::new(), marks: Vec::new(), memo: HashMap::new(), budget };
    let value = m.run()?;
    Ok((value, m.pos))
}

struct Machine<'a, 'b> {
    bytes: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
    budget: &'b mut usize,
}

impl Machine<'_, '_> {
    fn err<T>(&self, reason: impl Into<String>) -> Result<T, PickleError> {
        Err(PickleError::Malformed { at: self.pos, reason: reason.into() })
    }

    fn take(&mut self, n: usize) -> Result<&[u8], PickleError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or(PickleError::Truncated(self.bytes.len()))?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, PickleError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, PickleError> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().expect("2 bytes")))
    }

    fn u32(&mut self) -> Result<u32, PickleError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }

    fn u64(&mut self) -> Result<u64, PickleError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }

    /// A length read from the file, checked against what remains before any allocation.
    fn len_checked(&mut self, n: u64) -> Result<usize, PickleError> {
        let remaining = (self.bytes.len() - self.pos) as u64;
        if n > remaining {
            return self.err(format!("a length of {n} bytes runs past the end ({remaining} bytes left)"));
        }
        Ok(n as usize)
    }

    fn line(&mut self) -> Result<String, PickleError> {
        let rest = &self.bytes[self.pos..];
        let Some(n) = rest.iter().position(|&b| b == b'\n') else {
            return Err(PickleError::Truncated(self.bytes.len()));
        };
        let s = std::str::from_utf8(&rest[..n])
            .map_err(|_| PickleError::Malformed { at: self.pos, reason: "a text line is not UTF-8".into() })?;
        let s = s.to_string();
        self.pos += n + 1;
        Ok(s)
    }

    fn utf8(&mut self, n: usize) -> Result<String, PickleError> {
        let at = self.pos;
        let raw = self.take(n)?;
        String::from_utf8(raw.to_vec())
            .map_err(|_| PickleError::Malformed { at, reason: "a string is not UTF-8".into() })
    }

    fn charge(&mut self, nodes: usize) -> Result<(), PickleError> {
        if nodes > *self.budget {
            return self.err("the pickle builds more values than a checkpoint of this size can hold");
        }
        *self.budget -= nodes;
        Ok(())
    }

    fn push(&mut self, v: Value) -> Result<(), PickleError> {
        self.charge(1)?;
        self.stack.push(v);
        Ok(())
    }

    fn pop(&mut self) -> Result<Value, PickleError> {
        match self.stack.pop() {
            Some(v) => Ok(v),
            None => self.err("pop from an empty stack"),
        }
    }

    fn pop_mark(&mut self) -> Result<Vec<Value>, PickleError> {
        let Some(mark) = self.marks.pop() else {
            return self.err("no MARK on the stack");
        };
        if mark > self.stack.len() {
            return self.err("MARK beyond the stack");
        }
        Ok(self.stack.split_off(mark))
    }

    fn top(&mut self) -> Result<&mut Value, PickleError> {
        let at = self.pos;
        self.stack.last_mut().ok_or(PickleError::Malformed { at, reason: "empty stack".into() })
    }

    fn check_depth(&self, items: &[Value]) -> Result<(), PickleError> {
        if items.iter().any(|v| v.depth() >= MAX_DEPTH) {
            return self.err(format!("containers nested deeper than {MAX_DEPTH}"));
        }
        Ok(())
    }

    fn extend_top(&mut self, items: Vec<Value>) -> Result<(), PickleError> {
        self.check_depth(&items)?;
        let at = self.pos;
        match self.top()? {
            Value::List(v) => v.extend(items),
            // A set or an object's list state: kept only as far as we need it.
            Value::Opaque(_) => {}
            other => return Err(PickleError::Malformed { at, reason: format!("APPEND to a {}", other.type_name()) }),
        }
        Ok(())
    }

    fn set_items(&mut self, items: Vec<Value>) -> Result<(), PickleError> {
        if !items.len().is_multiple_of(2) {
            return self.err("SETITEMS with an odd number of values");
        }
        self.check_depth(&items)?;
        let at = self.pos;
        match self.top()? {
            Value::Dict(d) => {
                // Appended without looking for an earlier equal key (that would be
                // quadratic in a hostile file); lookups take the last one, as Python would.
                let mut it = items.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    d.push((k, v));
                }
            }
            Value::Opaque(_) => {}
            other => return Err(PickleError::Malformed { at, reason: format!("SETITEM on a {}", other.type_name()) }),
        }
        Ok(())
    }

    /// The memo index of a PUT or GET: a byte, four bytes, the next free slot
    /// (MEMOIZE) or a text line.
    fn memo_key(&mut self, op: u8) -> Result<u32, PickleError> {
        match op {
            b'q' | b'h' => Ok(self.u8()? as u32),
            b'r' | b'j' => self.u32(),
            0x94 => Ok(self.memo.len() as u32),
            _ => {
                let line = self.line()?;
                line.parse::<u32>().or_else(|_| self.err(format!("memo index {line:?}")))
            }
        }
    }

    fn memo_put(&mut self, key: u32) -> Result<(), PickleError> {
        let v = match self.stack.last() {
            Some(v) => v.clone(),
            None => return self.err("PUT from an empty stack"),
        };
        self.charge(v.nodes())?;
        self.memo.insert(key, v);
        Ok(())
    }

    fn memo_get(&mut self, key: u32) -> Result<(), PickleError> {
        let Some(v) = self.memo.get(&key) else {
            return self.err(format!("GET of memo {key}, which was never PUT"));
        };
        let v = v.clone();
        self.charge(v.nodes())?;
        self.stack.push(v);
        Ok(())
    }

    /// The interpreter: one `match` arm per opcode, in one place to read against the pickle
    /// format (the one function allowed over 80 lines, scripts/long-functions.py).
    fn run(&mut self) -> Result<Value, PickleError> {
        loop {
            let at = self.pos;
            let op = self.u8()?;
            match op {
                0x80 => {
                    let proto = self.u8()?;
                    if proto > 5 {
                        return self.err(format!("pickle protocol {proto} is unknown"));
                    }
                }
                0x95 => {
                    self.u64()?; // FRAME: a size hint only
                }
                b'.' => {
                    let v = self.pop()?;
                    return Ok(v);
                }
                b'(' => self.marks.push(self.stack.len()),
                b')' => self.push(Value::Tuple(Vec::new()))?,
                b']' => self.push(Value::List(Vec::new()))?,
                b'}' => self.push(Value::Dict(Vec::new()))?,
                0x8f => self.push(Value::Opaque("builtins.set".into()))?,
                b't' => {
                    let items = self.pop_mark()?;
                    self.check_depth(&items)?;
                    self.push(Value::Tuple(items))?
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    if self.stack.len() < n {
                        return self.err("TUPLE from a short stack");
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    self.check_depth(&items)?;
                    self.push(Value::Tuple(items))?
                }
                b'l' => {
                    let items = self.pop_mark()?;
                    self.check_depth(&items)?;
                    self.push(Value::List(items))?
                }
                b'd' => {
                    let items = self.pop_mark()?;
                    self.push(Value::Dict(Vec::new()))?;
                    self.set_items(items)?;
                }
                b'a' => {
                    let v = self.pop()?;
                    self.extend_top(vec![v])?;
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    self.extend_top(items)?;
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    self.set_items(vec![k, v])?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    self.set_items(items)?;
                }
                0x90 => {
                    // ADDITEMS (to a set): values are not needed.
                    self.pop_mark()?;
                }
                b'N' => self.push(Value::None)?,
                0x88 => self.push(Value::Bool(true))?,
                0x89 => self.push(Value::Bool(false))?,
                b'K' => {
                    let v = self.u8()? as i64;
                    self.push(Value::Int(v))?
                }
                b'M' => {
                    let v = self.u16()? as i64;
                    self.push(Value::Int(v))?
                }
                b'J' => {
                    let v = self.u32()? as i32 as i64;
                    self.push(Value::Int(v))?
                }
                0x8a | 0x8b => {
                    let n = if op == 0x8a { self.u8()? as u64 } else { self.u32()? as u64 };
                    let n = self.len_checked(n)?;
                    let raw = self.take(n)?.to_vec();
                    self.push(long_value(&raw))?
                }
                b'I' | b'L' => {
                    let line = self.line()?;
                    let t = line.trim_end_matches('L');
                    let v = match t {
                        "01" => Value::Bool(true),
                        "00" => Value::Bool(false),
                        _ => match t.parse::<i64>() {
                            Ok(i) => Value::Int(i),
                            Err(_) => return self.err(format!("integer {line:?} does not fit 64 bits")),
                        },
                    };
                    self.push(v)?
                }
                b'G' => {
                    let v = f64::from_be_bytes(self.take(8)?.try_into().expect("8 bytes"));
                    self.push(Value::Float(v))?
                }
                b'F' => {
                    let line = self.line()?;
                    match line.trim().parse::<f64>() {
                        Ok(v) => self.push(Value::Float(v))?,
                        Err(_) => return self.err(format!("float {line:?}")),
                    }
                }
                b'X' | 0x8c | 0x8d | b'T' | b'U' => {
                    let n = match op {
                        b'X' | b'T' => self.u32()? as u64,
                        0x8c | b'U' => self.u8()? as u64,
                        _ => self.u64()?,
                    };
                    let n = self.len_checked(n)?;
                    let s = if op == b'T' || op == b'U' {
                        // Python 2 byte strings: latin-1 text in practice.
                        self.take(n)?.iter().map(|&b| b as char).collect()
                    } else {
                        self.utf8(n)?
                    };
                    self.charge(n / 64)?;
                    self.push(Value::Str(s))?
                }
                b'B' | b'C' | 0x8e => {
                    let n = match op {
                        b'B' => self.u32()? as u64,
                        b'C' => self.u8()? as u64,
                        _ => self.u64()?,
                    };
                    let n = self.len_checked(n)?;
                    let b = self.take(n)?.to_vec();
                    self.charge(n / 64)?;
                    self.push(Value::Bytes(b))?
                }
                b'V' => {
                    let s = self.line()?;
                    self.push(Value::Str(s))?
                }
                b'S' => {
                    let s = self.line()?;
                    let t = s.trim();
                    let unquoted = t.strip_prefix(['\'', '"']).and_then(|x| x.strip_suffix(['\'', '"'])).unwrap_or(t);
                    self.push(Value::Str(unquoted.to_string()))?
                }
                b'q' | b'r' | 0x94 | b'p' => {
                    let k = self.memo_key(op)?;
                    self.memo_put(k)?
                }
                b'h' | b'j' | b'g' => {
                    let k = self.memo_key(op)?;
                    self.memo_get(k)?
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.push(Value::Global(format!("{module}.{name}")))?
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    match (module, name) {
                        (Value::Str(m), Value::Str(n)) => self.push(Value::Global(format!("{m}.{n}")))?,
                        _ => return self.err("STACK_GLOBAL needs two strings"),
                    }
                }
                b'R' => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let v = self.reduce(callable, args)?;
                    self.push(v)?
                }
                0x81 => {
                    let _args = self.pop()?;
                    let class = self.pop()?;
                    self.push(Value::Opaque(global_name(&class)))?
                }
                0x92 => {
                    let _kwargs = self.pop()?;
                    let _args = self.pop()?;
                    let class = self.pop()?;
                    self.push(Value::Opaque(global_name(&class)))?
                }
                b'o' => {
                    let mut items = self.pop_mark()?;
                    if items.is_empty() {
                        return self.err("OBJ without a class");
                    }
                    let class = items.remove(0);
                    self.push(Value::Opaque(global_name(&class)))?
                }
                b'i' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.pop_mark()?;
                    self.push(Value::Opaque(format!("{module}.{name}")))?
                }
                b'b' => {
                    // BUILD: object state (a tensor's hooks, an OrderedDict's attributes). Dropped.
                    self.pop()?;
                    if self.stack.is_empty() {
                        return self.err("BUILD on an empty stack");
                    }
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let v = persistent_storage(&pid).map_err(|reason| PickleError::Malformed { at, reason })?;
                    self.push(v)?
                }
                b'P' => return Err(PickleError::Unsupported { at, op }),
                b'0' => {
                    self.pop()?;
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let v = match self.stack.last() {
                        Some(v) => v.clone(),
                        None => return self.err("DUP of an empty stack"),
                    };
                    self.charge(v.nodes())?;
                    self.stack.push(v)
                }
                _ => return Err(PickleError::Unsupported { at, op }),
            }
        }
    }

    /// REDUCE: interprets the constructors of a state dict, calls nothing else.
    fn reduce(&self, callable: Value, args: Value) -> Result<Value, PickleError> {
        let name = global_name(&callable);
        let args = match args {
            Value::Tuple(a) => a,
            other => return self.err(format!("arguments of {name} are a {}, not a tuple", other.type_name())),
        };
        match name.as_str() {
            "collections.OrderedDict" | "builtins.dict" | "__builtin__.dict" if args.is_empty() => {
                Ok(Value::Dict(Vec::new()))
            }
            "torch._utils._rebuild_tensor_v2" | "torch._utils._rebuild_tensor" => self.rebuild_tensor(&name, &args),
            "torch._utils._rebuild_parameter" | "torch._utils._rebuild_parameter_with_state" => {
                match args.into_iter().next() {
                    Some(t @ Value::Tensor(_)) => Ok(t),
                    _ => self.err(format!("{name} without a tensor")),
                }
            }
            _ => Ok(Value::Opaque(name)),
        }
    }

    fn rebuild_tensor(&self, name: &str, args: &[Value]) -> Result<Value, PickleError> {
        let bad = |what: &str| PickleError::Malformed { at: self.pos, reason: format!("{name}: {what}") };
        let storage = match args.first() {
            Some(Value::Storage(s)) => s.clone(),
            _ => return Err(bad("the first argument is not a storage")),
        };
        let offset =
            args.get(1).and_then(Value::as_int).filter(|&o| o >= 0).ok_or_else(|| bad("bad storage offset"))? as usize;
        let dims = |v: Option<&Value>, what: &str| -> Result<Vec<usize>, PickleError> {
            match v {
                Some(Value::Tuple(items)) if items.len() <= MAX_RANK => items
                    .iter()
                    .map(|x| x.as_int().filter(|&d| d >= 0).map(|d| d as usize).ok_or_else(|| bad(what)))
                    .collect(),
                _ => Err(bad(what)),
            }
        };
        let shape = dims(args.get(2), "bad size")?;
        let stride = dims(args.get(3), "bad stride")?;
        if shape.len() != stride.len() {
            return Err(bad("size and stride differ in rank"));
        }
        Ok(Value::Tensor(TensorRef { storage, offset, shape, stride }))
    }
}

fn global_name(v: &Value) -> String {
    match v {
        Value::Global(n) | Value::Opaque(n) => n.clone(),
        other => format!("<{}>", other.type_name()),
    }
}

/// Python's little-endian two's-complement LONG, when it fits 64 bits.
fn long_value(raw: &[u8]) -> Value {
    if raw.is_empty() {
        return Value::Int(0);
    }
    if raw.len() > 8 {
        // The legacy format's magic number is 10 bytes; only equality matters for it.
        return Value::Bytes(raw.to_vec());
    }
    let negative = raw[raw.len() - 1] & 0x80 != 0;
    let mut buf = if negative { [0xffu8; 8] } else { [0u8; 8] };
    buf[..raw.len()].copy_from_slice(raw);
    Value::Int(i64::from_le_bytes(buf))
}

/// torch's persistent id for a storage: `('storage', StorageClass, key, location, numel, ...)`.
fn persistent_storage(pid: &Value) -> Result<Value, String> {
    let Value::Tuple(items) = pid else {
        return Err(format!("a persistent id is a {}, not a tuple", pid.type_name()));
    };
    match items.first() {
        Some(Value::Str(s)) if s == "storage" => {}
        _ => return Err("a persistent id that is not a storage".into()),
    }
    let class = match items.get(1) {
        Some(Value::Global(n)) => n.clone(),
        _ => return Err("a storage without a storage class".into()),
    };
    let short = class.rsplit('.').next().unwrap_or(&class);
    let dtype = DType::from_storage_name(short).ok_or_else(|| format!("storage type {class} is not supported"))?;
    let key = match items.get(2) {
        Some(Value::Str(k)) => k.clone(),
        Some(Value::Int(i)) => i.to_string(),
        _ => return Err("a storage without a key".into()),
    };
    let numel = items.get(4).and_then(Value::as_int).filter(|&n| n >= 0).ok_or("a storage without a size")? as usize;
    Ok(Value::Storage(StorageRef { key, dtype, numel }))
}
