"""RowSink: observers get the decoded tables the writer gets; one that raises never stops the recording."""

from __future__ import annotations

from wsreplay import load
from wsreplay.events import ConnectionLog
from wsreplay.protocol import encode_hello, hello_args
from wsreplay.record.sink import RowSink
from wsreplay.store.writer import CaptureWriter

HELLO = encode_hello(hello_args(uuid="i-1", version="2023.10.0")).encode()


class Seen:
    def __init__(self) -> None:
        self.names: list[str | None] = []

    def observe(self, table) -> None:
        self.names += table.column("instruction_name").to_pylist()


class Broken:
    def observe(self, table) -> None:
        raise RuntimeError("observer bug")


def test_observers_get_decoded_tables_and_errors_are_counted(tmp_path):
    seen = Seen()
    sink = RowSink(CaptureWriter(tmp_path / "cap", autoflush=False), flush_interval=60, observers=[Broken(), seen])
    log = ConnectionLog("cap", "/ws/outpost/pk/")
    sink.put(log.open(1))
    sink.put((log, 2, log.seq, "to_server", "text", HELLO, False))
    log.seq += 1
    assert sink.flush()
    sink.put((log, log.close(3, "to_server", code=1000)))
    sink.close()
    assert seen.names == [None, "HELLO", None]
    assert sink.observer_errors == 2
    frames = load(tmp_path / "cap")
    assert list(frames.instance_uuid.astype(object)[1:]) == ["i-1", "i-1"]  # the close row too
