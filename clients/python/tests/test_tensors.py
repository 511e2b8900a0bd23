"""numpy to and from the wire forms, without a server: dtypes kept, the inline/raw switch at its edge."""
import base64
import unittest

import numpy as np

from autograd_client import _tensors as T
from autograd_client._generated.autograd.v1 import tensor_pb2


class Dtypes(unittest.TestCase):
    def test_numpy_dtypes_are_kept_and_python_numbers_follow_the_service(self):
        self.assertEqual(T.as_array(np.arange(3.0)).dtype, np.float64)
        self.assertEqual(T.as_array(np.float64(2.5)).dtype, np.float64)
        self.assertEqual(T.as_array(np.arange(3, dtype=np.int32)).dtype, np.int64)
        self.assertEqual(T.as_array(np.arange(3, dtype=np.uint16)).dtype, np.int64)
        self.assertEqual(T.as_array(np.ones(2, dtype=np.float16)).dtype, np.float32)
        self.assertEqual(T.as_array(np.array([True, False])).dtype, np.bool_)
        self.assertEqual(T.as_array(0.5).dtype, np.float32)
        self.assertEqual(T.as_array([1.0, 2.0]).dtype, np.float32)
        self.assertEqual(T.as_array(3).dtype, np.int64)
        self.assertEqual(T.as_array(0.5).shape, ())  # a scalar stays a scalar

    def test_dtypes_the_service_lacks_are_refused(self):
        for bad in (np.ones(2, dtype=np.complex64), np.ones(2, dtype=np.uint64), np.array(["a"])):
            with self.assertRaises(TypeError):
                T.as_array(bad)


class Encoding(unittest.TestCase):
    def test_json_switches_to_b64_past_the_inline_limit(self):
        edge = np.arange(T.INLINE_MAX_ELEMENTS, dtype=np.float64)
        self.assertIn("data", T.to_json(edge))
        past = np.arange(T.INLINE_MAX_ELEMENTS + 1, dtype=np.float64)
        encoded = T.to_json(past)
        self.assertNotIn("data", encoded)
        self.assertEqual(base64.b64decode(encoded["b64"]), past.tobytes())
        np.testing.assert_array_equal(T.from_json(encoded), past)

    def test_proto_switches_to_raw_past_the_inline_limit(self):
        edge = T.to_proto(np.arange(T.INLINE_MAX_ELEMENTS, dtype=np.float32), tensor_pb2)
        self.assertEqual((len(edge.float_data), edge.raw), (T.INLINE_MAX_ELEMENTS, b""))
        past = T.to_proto(np.arange(T.INLINE_MAX_ELEMENTS + 1, dtype=np.float32), tensor_pb2)
        self.assertEqual((len(past.float_data), len(past.raw)), (0, 4 * (T.INLINE_MAX_ELEMENTS + 1)))
        np.testing.assert_array_equal(T.from_proto(past, tensor_pb2), np.arange(T.INLINE_MAX_ELEMENTS + 1, dtype=np.float32))

    def test_special_values_and_shapes_round_trip(self):
        x = np.array([[np.nan, np.inf], [-np.inf, -0.0]])
        back = T.from_json(T.to_json(x))
        self.assertEqual(back.shape, (2, 2))
        self.assertTrue(np.isnan(back[0, 0]))
        np.testing.assert_array_equal(back[0, 1:], [np.inf])
        self.assertEqual(T.to_json(x)["data"][:3], ["NaN", "Infinity", "-Infinity"])
        for value in (np.zeros((0, 3)), np.array(7, dtype=np.int64), np.array([True, False])):
            self.assertEqual(T.from_proto(T.to_proto(value, tensor_pb2), tensor_pb2).shape, value.shape)
            np.testing.assert_array_equal(T.from_json(T.to_json(value)), value)

    def test_a_spec_carries_type_without_values(self):
        self.assertEqual(T.to_json(T.spec([2, 3], "float64")), {"dtype": "float64", "shape": [2, 3]})
        t = T.to_proto(T.spec([4]), tensor_pb2)
        self.assertEqual((list(t.shape), t.raw, len(t.float_data)), ([4], b"", 0))


if __name__ == "__main__":
    unittest.main()
