//! Writers for PyTorch checkpoints, so that tests need neither PyTorch nor anybody's
//! files: the legacy `torch.save` stream (torch < 1.6, as M2m's `.t7` files), the zip
//! archive of torch >= 1.6, and safetensors. The pickles are what `torch.save` writes for
//! a dict of float32 tensors (protocol 2, `_rebuild_tensor_v2`, one storage each).

use std::io::Write;

use burn::module::Module;
use burn::tensor::backend::Backend;

/// One tensor of a state dict: key, shape, row-major values.
pub type Entry = (String, Vec<usize>, Vec<f32>);

/// How the state dict sits in the file.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Layout {
    /// The state dict is the file's top-level dict.
    Flat,
    /// `{'net': state_dict, 'acc': 91.9, 'epoch': 159}`, as M2m's checkpoints.
    NestedNet,
}

struct Pickle(Vec<u8>);

impl Pickle {
    fn op(&mut self, b: u8) {
        self.0.push(b);
    }
    fn str(&mut self, s: &str) {
        self.op(b'X');
        self.0.extend((s.len() as u32).to_le_bytes());
        self.0.extend(s.as_bytes());
    }
    fn int(&mut self, v: i64) {
        self.op(b'J');
        self.0.extend((v as i32).to_le_bytes());
    }
    fn float(&mut self, v: f64) {
        self.op(b'G');
        self.0.extend(v.to_be_bytes());
    }
    /// LONG1 of 8 bytes (python ids do not fit BININT).
    fn long(&mut self, v: i64) {
        self.op(0x8a);
        self.op(8);
        self.0.extend(v.to_le_bytes());
    }
    fn global(&mut self, module: &str, name: &str) {
        self.op(b'c');
        self.0.extend(format!("{module}\n{name}\n").as_bytes());
    }
    fn tuple_of_ints(&mut self, v: &[usize]) {
        self.op(b'(');
        for &x in v {
            self.int(x as i64);
        }
        self.op(b't');
    }
    fn ordered_dict(&mut self) {
        self.global("collections", "OrderedDict");
        self.op(b')');
        self.op(b'R');
    }
    /// `_rebuild_tensor_v2(storage, 0, shape, stride, False, OrderedDict())` on storage `key`.
    fn tensor(&mut self, key: &str, shape: &[usize], numel: usize, legacy: bool) {
        self.global("torch._utils", "_rebuild_tensor_v2");
        self.op(b'(');
        self.op(b'(');
        self.str("storage");
        self.global("torch", "FloatStorage");
        self.str(key);
        self.str("cpu");
        self.int(numel as i64);
        if legacy {
            self.op(b'N'); // view metadata
        }
        self.op(b't');
        self.op(b'Q');
        self.int(0);
        self.tuple_of_ints(shape);
        let mut stride = vec![1usize; shape.len()];
        for d in (0..shape.len().saturating_sub(1)).rev() {
            stride[d] = stride[d + 1] * shape[d + 1];
        }
        self.tuple_of_ints(&stride);
        self.op(0x89); // requires_grad False
        self.ordered_dict();
        self.op(b't');
        self.op(b'R');
    }
}

fn main_pickle(entries: &[Entry], layout: Layout, momentum: &[Entry], legacy: bool) -> Vec<u8> {
    let mut p = Pickle(vec![0x80, 2]);
    if layout == Layout::NestedNet {
        p.op(b'}');
        p.op(b'(');
        p.str("net");
    }
    p.ordered_dict();
    p.op(b'(');
    for (i, (key, shape, values)) in entries.iter().enumerate() {
        p.str(key);
        p.tensor(&i.to_string(), shape, values.len(), legacy);
    }
    p.op(b'u');
    if layout == Layout::NestedNet {
        if !momentum.is_empty() {
            // torch < 1.? keyed the state by id(param); param_groups lists the same ids
            // in model.parameters() order (the state dict's order without buffers).
            let params: Vec<&String> = entries.iter().map(|e| &e.0).filter(|k| !is_buffer(k)).collect();
            let id =
                |k: &str| 140_000_000_000i64 + 72 * params.iter().position(|p| *p == k).expect("a parameter") as i64;
            p.str("optimizer");
            p.op(b'}');
            p.op(b'(');
            p.str("state");
            p.op(b'}');
            p.op(b'(');
            for (j, (key, shape, values)) in momentum.iter().enumerate() {
                p.long(id(key));
                p.op(b'}');
                p.str("momentum_buffer");
                p.tensor(&(entries.len() + j).to_string(), shape, values.len(), legacy);
                p.op(b's');
            }
            p.op(b'u');
            p.str("param_groups");
            p.op(b']');
            p.op(b'}');
            p.op(b'(');
            p.str("lr");
            p.float(0.1);
            p.str("params");
            p.op(b']');
            p.op(b'(');
            for k in &params {
                p.long(id(k));
            }
            p.op(b'e');
            p.op(b'u');
            p.op(b'a');
            p.op(b'u');
        }
        p.str("acc");
        p.float(91.9);
        p.str("epoch");
        p.int(159);
        p.op(b'u');
    }
    p.op(b'.');
    p.0
}

fn is_buffer(key: &str) -> bool {
    key.ends_with("running_mean") || key.ends_with("running_var") || key.ends_with("num_batches_tracked")
}

fn data_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// The legacy `torch.save` stream.
pub fn legacy_bytes(entries: &[Entry], layout: Layout) -> Vec<u8> {
    legacy_bytes_with_momentum(entries, layout, &[])
}

/// The legacy stream of `{'net': ..., 'optimizer': SGD state with these momentum
/// buffers (keyed by parameter name here), 'acc': ..., 'epoch': ...}`.
pub fn legacy_bytes_with_momentum(entries: &[Entry], layout: Layout, momentum: &[Entry]) -> Vec<u8> {
    let mut out = vec![0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e];
    out.extend([0x80, 0x02, b'M', 0xe9, 0x03, b'.']); // protocol 1001
    let mut info = Pickle(vec![0x80, 2]);
    info.op(b'}');
    info.op(b'(');
    info.str("protocol_version");
    info.int(1001);
    info.str("little_endian");
    info.op(0x88);
    info.op(b'u');
    info.op(b'.');
    out.extend(info.0);
    out.extend(main_pickle(entries, layout, momentum, true));
    let all: Vec<&Entry> = entries.iter().chain(momentum).collect();
    let mut keys = Pickle(vec![0x80, 2]);
    keys.op(b']');
    keys.op(b'(');
    for i in 0..all.len() {
        keys.str(&i.to_string());
    }
    keys.op(b'e');
    keys.op(b'.');
    out.extend(keys.0);
    for (_, _, values) in all {
        out.extend((values.len() as u64).to_le_bytes());
        out.extend(data_bytes(values));
    }
    out
}

/// The zip archive of torch >= 1.6 (stored entries under `archive/`).
pub fn zip_bytes(entries: &[Entry], layout: Layout) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file("archive/data.pkl", opts).unwrap();
    zip.write_all(&main_pickle(entries, layout, &[], false)).unwrap();
    zip.start_file("archive/byteorder", opts).unwrap();
    zip.write_all(b"little").unwrap();
    for (i, (_, _, values)) in entries.iter().enumerate() {
        zip.start_file(format!("archive/data/{i}"), opts).unwrap();
        zip.write_all(&data_bytes(values)).unwrap();
    }
    zip.start_file("archive/version", opts).unwrap();
    zip.write_all(b"3\n").unwrap();
    zip.finish().unwrap().into_inner()
}

/// A safetensors file (always flat).
pub fn safetensors_bytes(entries: &[Entry]) -> Vec<u8> {
    let data: Vec<(String, Vec<u8>, Vec<usize>)> = entries
        .iter()
        .map(|(k, s, v)| (k.clone(), v.iter().flat_map(|x| x.to_le_bytes()).collect(), s.clone()))
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = data
        .iter()
        .map(|(k, b, s)| {
            (k.clone(), safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b).unwrap())
        })
        .collect();
    safetensors::serialize(views, None).unwrap()
}

/// The M2m reference's state-dict keys of ResNet-32, in its `state_dict()` order.
pub fn reference_resnet32_keys(cosine_head: bool) -> Vec<String> {
    let bn = |p: &str| ["weight", "bias", "running_mean", "running_var"].map(|s| format!("{p}.{s}"));
    let mut keys = vec!["conv_1_3x3.weight".to_string()];
    keys.extend(bn("bn_1"));
    for s in 1..=3 {
        for b in 0..5 {
            keys.push(format!("stage_{s}.{b}.conv_a.weight"));
            keys.extend(bn(&format!("stage_{s}.{b}.bn_a")));
            keys.push(format!("stage_{s}.{b}.conv_b.weight"));
            keys.extend(bn(&format!("stage_{s}.{b}.bn_b")));
        }
    }
    keys.push("linear.weight".into());
    if !cosine_head {
        keys.push("linear.bias".into());
    }
    keys
}

/// Our ResNet-32 as the reference's state dict: its tensors in visiting order under the
/// reference's names, torch's `Linear` weight transposed, `num_batches_tracked` added as
/// torch writes it (these stay float32 here; the reader ignores them by name).
pub fn as_reference_state_dict<B: Backend, M: Module<B>>(net: &M, cosine_head: bool) -> Vec<Entry> {
    let tensors = crate::snapshot_with_shapes(net);
    let keys = reference_resnet32_keys(cosine_head);
    assert_eq!(tensors.len(), keys.len(), "ResNet-32 has {} tensors, the reference {}", tensors.len(), keys.len());
    let mut out = Vec::new();
    for (key, (shape, values)) in keys.into_iter().zip(tensors) {
        let (shape, values) = if key == "linear.weight" && !cosine_head {
            let (rows, cols) = (shape[0], shape[1]);
            let t: Vec<f32> =
                (0..cols).flat_map(|c| (0..rows).map(move |r| (r, c))).map(|(r, c)| values[r * cols + c]).collect();
            (vec![cols, rows], t)
        } else {
            (shape, values)
        };
        let bn = key.ends_with("running_var");
        out.push((key.clone(), shape, values));
        if bn {
            out.push((key.replace("running_var", "num_batches_tracked"), vec![], vec![0.0]));
        }
    }
    out
}
