#!/usr/bin/env python3
"""Reads TensorBoard event files back with TensorBoard's own readers and prints JSON: what
the tests of m2m's TensorBoard logs check (tests/src/lib.rs `read_tensorboard`).

usage: read_events.py LOGDIR

Every folder under LOGDIR holding events.out.tfevents.* files is a run. For each run,
from tensorboard's EventAccumulator (size guidance 0: keep everything): scalars, images
(decoded with Pillow), text, the hparams plugin's records (parsed with
tensorboard.plugins.hparams.metadata), and the tags the server-side loader sees.
"""
import argparse
import io
import json
import os
import sys

from google.protobuf import json_format
from tensorboard.backend.event_processing import event_accumulator as ea
from tensorboard.backend.event_processing import plugin_event_accumulator as pea
from tensorboard.compat.proto import summary_pb2, types_pb2
from tensorboard.plugins.hparams import metadata as hp_metadata
from tensorboard.plugins.hparams import plugin_data_pb2  # noqa: F401 (types used via metadata)
from tensorboard.util import tensor_util

try:
    from PIL import Image  # pillow is a tensorboard dependency
except ImportError:  # pragma: no cover
    Image = None


def find_runs(logdir):
    runs = []
    for root, _dirs, files in os.walk(logdir):
        if any(".tfevents." in f for f in files):
            runs.append(root)
    return sorted(runs)


def msg_to_dict(msg):
    return json_format.MessageToDict(msg, preserving_proto_field_name=True)


def read_run(path):
    acc = ea.EventAccumulator(path, size_guidance={k: 0 for k in ea.STORE_EVERYTHING_SIZE_GUIDANCE})
    acc.Reload()
    tags = acc.Tags()
    out = {"file_version": acc.file_version, "tags": {k: v for k, v in tags.items() if v}}

    out["scalars"] = {
        tag: [[e.step, e.value] for e in acc.Scalars(tag)] for tag in tags["scalars"]
    }

    tensor_scalars, text = {}, {}
    for tag in tags["tensors"]:
        plugin = acc.SummaryMetadata(tag).plugin_data.plugin_name
        if plugin == "scalars":
            tensor_scalars[tag] = [
                [e.step, tensor_util.make_ndarray(e.tensor_proto).item(),
                 types_pb2.DataType.Name(e.tensor_proto.dtype)]
                for e in acc.Tensors(tag)
            ]
        elif plugin == "text":
            text[tag] = [
                [e.step, tensor_util.make_ndarray(e.tensor_proto).item().decode("utf-8")]
                for e in acc.Tensors(tag)
            ]
    out["tensor_scalars"] = tensor_scalars
    out["text"] = text

    images = {}
    for tag in tags["images"]:
        items = []
        for e in acc.Images(tag):
            item = {"step": e.step, "width": e.width, "height": e.height,
                    "bytes": len(e.encoded_image_string)}
            if Image is not None:
                im = Image.open(io.BytesIO(e.encoded_image_string))
                item["decoded"] = {"format": im.format, "size": list(im.size), "mode": im.mode}
            items.append(item)
        images[tag] = items
    out["images"] = images

    hp = {}
    content = acc.PluginTagToContent("hparams") if "hparams" in acc._plugin_to_tag_to_content else {}
    if hp_metadata.EXPERIMENT_TAG in content:
        hp["experiment"] = msg_to_dict(hp_metadata.parse_experiment_plugin_data(content[hp_metadata.EXPERIMENT_TAG]))
    if hp_metadata.SESSION_START_INFO_TAG in content:
        hp["session_start_info"] = msg_to_dict(
            hp_metadata.parse_session_start_info_plugin_data(content[hp_metadata.SESSION_START_INFO_TAG]))
    if hp_metadata.SESSION_END_INFO_TAG in content:
        hp["session_end_info"] = msg_to_dict(
            hp_metadata.parse_session_end_info_plugin_data(content[hp_metadata.SESSION_END_INFO_TAG]))
    out["hparams"] = hp

    # What the server-side (Python) loader sees after migration.
    pacc = pea.EventAccumulator(path, size_guidance={k: 0 for k in pea.DEFAULT_SIZE_GUIDANCE})
    pacc.Reload()
    server = {}
    for tag in pacc.Tags()["tensors"]:
        md = pacc.SummaryMetadata(tag)
        server[tag] = {
            "plugin": md.plugin_data.plugin_name,
            "data_class": summary_pb2.DataClass.Name(md.data_class),
            "points": len(pacc.Tensors(tag)),
        }
    out["server_view"] = server
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("logdir")
    args = ap.parse_args()
    result = {}
    for path in find_runs(args.logdir):
        result[os.path.relpath(path, args.logdir)] = read_run(path)
    json.dump({"runs": result}, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
