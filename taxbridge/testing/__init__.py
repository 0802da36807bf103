"""Test helpers users may import in their own tests: :class:`RecordingBackend`, a transparent
recording wrapper that rehearses outages, and :mod:`taxbridge.testing.fake_avatax`, an
AvaTax REST v2 stand-in for respx, ``httpx.MockTransport`` or a real socket."""

from taxbridge.testing.recording import RecordingBackend

__all__ = ["RecordingBackend"]
