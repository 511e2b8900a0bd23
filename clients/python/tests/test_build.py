"""The build backend: stubs for every .proto in the contracts tree, new files and packages included, kept inside the package."""
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
PROJECT = os.path.dirname(HERE)
PROTOS = os.path.normpath(os.path.join(PROJECT, "..", "..", "src", "Contracts", "Protos"))

# A contract file another part of the service might add: a new package, in its own folder, importing ours.
NEW_PACKAGE_PROTO = """syntax = "proto3";
package inference.v2;
import "autograd/v1/tensor.proto";
service Predict { rpc Infer(InferRequest) returns (InferResponse); }
message InferRequest { string model = 1; autograd.v1.Tensor input = 2; }
message InferResponse { autograd.v1.Tensor output = 1; }
"""
ROOT_PROTO = """syntax = "proto3";
package extra;
import "inference/v2/predict.proto";
message Wrapped { inference.v2.InferRequest request = 1; }
"""

CHECK = """
import sys
sys.path.insert(0, sys.argv[1])
import autograd_client
assert autograd_client.__file__.startswith(sys.argv[1]), autograd_client.__file__
from autograd_client._generated.inference.v2 import predict_pb2, predict_pb2_grpc
from autograd_client._generated import extra_pb2
from autograd_client._generated.autograd.v1 import tensor_pb2
w = extra_pb2.Wrapped(request=predict_pb2.InferRequest(model="m", input=tensor_pb2.Tensor(shape=[2])))
assert extra_pb2.Wrapped.FromString(w.SerializeToString()).request.input.shape == [2]
assert hasattr(predict_pb2_grpc, "PredictStub")
import autograd_client._grpc  # the client's own stubs still load next to the new ones
print("ok")
"""


class BuildBackend(unittest.TestCase):
    def test_a_new_proto_file_and_package_need_no_change_to_the_client(self):
        work = tempfile.mkdtemp(prefix="autograd-build-test-")
        try:
            protos = os.path.join(work, "protos")
            shutil.copytree(PROTOS, protos)
            os.makedirs(os.path.join(protos, "inference", "v2"))
            with open(os.path.join(protos, "inference", "v2", "predict.proto"), "w") as f:
                f.write(NEW_PACKAGE_PROTO)
            with open(os.path.join(protos, "extra.proto"), "w") as f:
                f.write(ROOT_PROTO)
            env = dict(os.environ, AUTOGRAD_PROTOS=protos)
            build = ("import sys; sys.path.insert(0, sys.argv[1]); import autograd_build; "
                     "print(autograd_build.build_wheel(sys.argv[2]))")
            out = subprocess.run([sys.executable, "-c", build, os.path.join(PROJECT, "build_backend"), work], env=env,
                                 capture_output=True, text=True, check=True)
            wheel = os.path.join(work, out.stdout.strip().splitlines()[-1])
            unpacked = os.path.join(work, "site")
            with zipfile.ZipFile(wheel) as z:
                names = z.namelist()
                z.extractall(unpacked)
            self.assertIn("autograd_client/_generated/inference/v2/predict_pb2_grpc.py", names)
            self.assertFalse([n for n in names if not n.startswith(("autograd_client/", "autograd_client-"))],
                             "everything generated stays inside the package")
            check = subprocess.run([sys.executable, "-c", CHECK, unpacked], capture_output=True, text=True)
            self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
        finally:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
