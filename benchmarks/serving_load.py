"""Load on the stand-in model server: concurrent REST and gRPC clients on 127.0.0.1.

The model of RUN_DIR is exported (version 1) and served by the stand-in server of the tests
(`tests/serving/standin_server.py`: the SavedModels loaded with `tf.saved_model.load`, as TF
Serving loads them; no keras_recae code runs in it). Client threads send `serving_default`
requests (one user, a history of `--history` known items, each row led by the padding id) for
`--seconds`; at `--swap-at` seconds a second version is exported into the base directory and the
server, polling it, loads it and serves it from then on. Reported: requests, throughput,
p50/p99 latency per protocol, errors (any non-200 answer, gRPC error or non-finite score), the
versions the gRPC answers came from, and the process's resident memory over time.

Usage:
    python benchmarks/serving_load.py RUN_DIR OUT.json [--seconds 60] [--rest-clients 4]
        [--grpc-clients 4] [--swap-at 30] [--history 20]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

REPOSITORY = Path(__file__).resolve().parents[1]


def rss_mb() -> float:
    with open("/proc/self/status", encoding="utf-8") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rest-clients", type=int, default=4)
    parser.add_argument("--grpc-clients", type=int, default=4)
    parser.add_argument("--swap-at", type=float, default=30.0)
    parser.add_argument("--history", type=int, default=20)
    parser.add_argument("--k", type=int, default=100)
    args = parser.parse_args()

    sys.path.insert(0, str(REPOSITORY / "tests" / "serving"))
    import grpc
    import tensorflow as tf
    from standin_server import StandInModelServer
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    from keras_recae.runs import load_run_model
    from keras_recae.serving import export

    model = load_run_model(args.run_dir)
    known = np.asarray(model.item_ids)
    base = Path(tempfile.mkdtemp(prefix="serving-load-")) / "rec"
    started = time.perf_counter()
    export(model, base, k=args.k)
    export_seconds = time.perf_counter() - started

    results = {"rest": [], "grpc": []}
    errors = {"rest": [], "grpc": []}
    versions = {}
    lock = threading.Lock()
    stop = threading.Event()

    def history(rng) -> list:
        return [-1] + rng.choice(known, size=args.history, replace=False).tolist()

    def rest_client(seed: int, url: str) -> None:
        rng = np.random.default_rng(seed)
        while not stop.is_set():
            body = json.dumps({"instances": [{"item_ids": history(rng)}]}).encode()
            request = urllib.request.Request(
                f"{url}/v1/models/rec:predict",
                data=body,
                headers={"Content-Type": "application/json"},
            )
            begin = time.perf_counter()
            try:
                with urllib.request.urlopen(request, timeout=60) as response:
                    answer = json.loads(response.read())
                scores = np.asarray(answer["predictions"][0]["scores"], np.float64)
                if not np.isfinite(scores).all():
                    raise ValueError("non-finite score")
            except Exception as error:  # every failure counts, whatever its kind
                with lock:
                    errors["rest"].append(repr(error)[:200])
                continue
            with lock:
                results["rest"].append(time.perf_counter() - begin)

    def grpc_client(seed: int, target: str) -> None:
        rng = np.random.default_rng(seed)
        with grpc.insecure_channel(target) as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            while not stop.is_set():
                request = predict_pb2.PredictRequest()
                request.model_spec.name = "rec"
                request.inputs["item_ids"].CopyFrom(
                    tf.make_tensor_proto(np.array([history(rng)], np.int64))
                )
                begin = time.perf_counter()
                try:
                    response = stub.Predict(request, timeout=60)
                    scores = tf.make_ndarray(response.outputs["scores"])
                    if not np.isfinite(scores).all():
                        raise ValueError("non-finite score")
                except Exception as error:  # every failure counts, whatever its kind
                    with lock:
                        errors["grpc"].append(repr(error)[:200])
                    continue
                elapsed = time.perf_counter() - begin
                with lock:
                    results["grpc"].append(elapsed)
                    version = response.model_spec.version.value
                    versions[version] = versions.get(version, 0) + 1

    memory = []
    with StandInModelServer(base, "rec", poll_seconds=0.5) as server:
        threads = [
            threading.Thread(target=rest_client, args=(i, server.rest_url))
            for i in range(args.rest_clients)
        ] + [
            threading.Thread(target=grpc_client, args=(100 + i, server.grpc_target))
            for i in range(args.grpc_clients)
        ]
        begin = time.perf_counter()
        for thread in threads:
            thread.start()
        swapped = None
        while (elapsed := time.perf_counter() - begin) < args.seconds:
            memory.append((round(elapsed, 1), round(rss_mb(), 1)))
            if swapped is None and elapsed >= args.swap_at:
                swap_begin = time.perf_counter()
                export(model, base, k=args.k)
                swapped = {
                    "at_seconds": round(elapsed, 1),
                    "export_seconds": time.perf_counter() - swap_begin,
                }
            time.sleep(1.0)
        stop.set()
        for thread in threads:
            thread.join()
        duration = time.perf_counter() - begin
        loaded = sorted(server.models)

    def summary(latencies: list) -> dict:
        if not latencies:
            return {"requests": 0}
        values = np.asarray(latencies) * 1000
        return {
            "requests": len(values),
            "per_second": len(values) / duration,
            "p50_ms": float(np.percentile(values, 50)),
            "p99_ms": float(np.percentile(values, 99)),
            "max_ms": float(values.max()),
        }

    half = [rss for second, rss in memory if second >= args.seconds / 2]
    report = {
        "run_dir": str(args.run_dir),
        "n_items": int(len(known)),
        "k": args.k,
        "history": args.history,
        "seconds": duration,
        "rest_clients": args.rest_clients,
        "grpc_clients": args.grpc_clients,
        "export_seconds": export_seconds,
        "swap": swapped,
        "versions_loaded": loaded,
        "grpc_answers_by_version": {str(k): v for k, v in sorted(versions.items())},
        "rest": {**summary(results["rest"]), "errors": len(errors["rest"])},
        "grpc": {**summary(results["grpc"]), "errors": len(errors["grpc"])},
        "error_examples": (errors["rest"] + errors["grpc"])[:5],
        "rss_mb": {
            "start": memory[0][1],
            "peak": max(rss for _, rss in memory),
            "end": memory[-1][1],
            "second_half_growth": (half[-1] - half[0]) if len(half) > 1 else None,
        },
        "rss_mb_by_second": memory,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(
        json.dumps(
            {
                key: report[key]
                for key in ("rest", "grpc", "swap", "grpc_answers_by_version", "rss_mb")
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
