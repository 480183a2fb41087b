"""Weights files that cannot be used: every one is a ModelLoadError with a clear message, and a
file is never executed while it is read (torch.load(weights_only=True): a pickle that would run
code is refused, and the code does not run)."""

from __future__ import annotations

import io
import os
import pickle
import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from seg_accel_ros.models.cgnet import CGNet
from seg_accel_ros.models.registry import (
    UNTRAINED,
    ModelLoadError,
    builds_untrained,
    create_model,
    get_spec,
    load_state_dict_file,
)

MODEL = "swiftnet_lite0"


class CodeOnLoad:
    """Unpickling this runs ``os.mkdir(marker)``: the classic malicious checkpoint."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (str(self.marker),)


def packaged_state() -> dict[str, torch.Tensor]:
    return torch.load(get_spec(MODEL).default_weights, map_location="cpu", weights_only=True)


def test_the_packaged_weights_load() -> None:
    model = create_model(MODEL)
    assert model.weights == str(get_spec(MODEL).default_weights)
    assert model.trained


def test_a_network_without_weights_says_it_is_untrained() -> None:
    model = create_model("espnet")  # its checkpoint lives outside the package
    assert model.weights == UNTRAINED and not model.trained


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=f"weights file not found: {tmp_path}/none.pt"):
        create_model(MODEL, tmp_path / "none.pt")


def test_a_directory_is_not_a_weights_file(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="weights file not found"):
        create_model(MODEL, tmp_path)


@pytest.mark.parametrize("keep", [0.5, 0.99, 0.0], ids=["half", "last_bytes_cut", "empty"])
def test_truncated_file(tmp_path: Path, keep: float) -> None:
    data = get_spec(MODEL).default_weights.read_bytes()
    path = tmp_path / "truncated.pt"
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ModelLoadError, match=rf"cannot read weights file {path}: (truncated "
                                             r"or corrupt file|the file is empty or cut short)"):
        create_model(MODEL, path)


def test_another_architecture(tmp_path: Path) -> None:
    path = tmp_path / "cgnet.pt"
    torch.save(CGNet().state_dict(), path)
    n_model, n_file = len(packaged_state()), len(CGNet().state_dict())
    with pytest.raises(ModelLoadError, match=rf"weights {path} do not fit architecture "
                                             rf"'{MODEL}': {n_model} missing keys \(e.g. "
                                             rf"encoder\._conv_stem\.weight, .*\); {n_file} "
                                             r"unexpected keys .*another model"):
        create_model(MODEL, path)


def test_right_keys_with_a_wrong_shape(tmp_path: Path) -> None:
    state = packaged_state()
    name = next(k for k, v in state.items() if v.ndim == 4)
    state[name] = torch.zeros(1, 1, 1, 1)
    path = tmp_path / "reshaped.pt"
    torch.save(state, path)
    with pytest.raises(ModelLoadError, match=rf"do not fit architecture '{MODEL}': 1 tensors "
                                             rf"of the wrong shape \(e.g. {name} \(1, 1, 1, 1\) "
                                             r"instead of \(\d+, \d+, \d+, \d+\)\)"):
        create_model(MODEL, path)


def test_a_missing_key(tmp_path: Path) -> None:
    state = packaged_state()
    name = sorted(state)[0]
    del state[name]
    path = tmp_path / "partial.pt"
    torch.save(state, path)
    with pytest.raises(ModelLoadError, match=rf"do not fit .*: 1 missing keys \(e.g. {name}\)"):
        create_model(MODEL, path)


@pytest.mark.parametrize("content", [
    [1, 2, 3], {}, {"epoch": 3, "lr": 0.1}, {"model": [torch.zeros(2)]}, torch.zeros(3),
    {1: torch.zeros(2)}, "a string",
], ids=["list", "empty_dict", "no_tensors", "wrapped_list", "bare_tensor", "int_keys", "str"])
def test_a_file_that_is_not_a_state_dict(tmp_path: Path, content: object) -> None:
    path = tmp_path / "other.pt"
    torch.save(content, path)
    with pytest.raises(ModelLoadError, match="file does not contain a state dict of tensors"):
        create_model(MODEL, path)


def test_a_text_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.pt"
    path.write_text("weights: see the wiki\n")
    with pytest.raises(ModelLoadError, match=rf"cannot read weights file {path}: not a "
                                             r"PyTorch weights file or corrupt"):
        create_model(MODEL, path)


def _small_checkpoint() -> bytes:
    buffer = io.BytesIO()
    torch.save({"conv.weight": torch.ones(2, 3, 1, 1), "conv.bias": torch.zeros(2)}, buffer)
    return buffer.getvalue()


SMALL = _small_checkpoint()

def _corrupt(data: bytes, cut: int, flips: list[tuple[int, int]]) -> bytes:
    out = bytearray(data)
    for where, xor in flips:
        out[where] ^= xor
    return bytes(out[:cut])


@settings(max_examples=60, deadline=None)
@given(data=st.one_of(
    st.binary(max_size=2000),
    st.tuples(st.integers(0, len(SMALL)), st.lists(st.tuples(st.integers(0, len(SMALL) - 1),
                                                             st.integers(1, 255)), max_size=4))
    .map(lambda cut_flips: _corrupt(SMALL, *cut_flips))))
def test_fuzz_random_and_corrupted_files_give_one_line_model_load_errors(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.pt"
        path.write_bytes(data)
        try:
            state = load_state_dict_file(path)
        except ModelLoadError as exc:
            message = str(exc)
            assert message.startswith(f"cannot read weights file {path}: ") or (
                message == "file does not contain a state dict of tensors"), message
            assert "\n" not in message and len(message) < 500
            return
    assert all(isinstance(v, torch.Tensor) for v in state.values())



def test_a_whole_pickled_module_is_refused(tmp_path: Path) -> None:
    """The usual torch.save(model) checkpoint needs arbitrary classes: refused, not run."""
    path = tmp_path / "module.pt"
    torch.save(CGNet(), path)
    with pytest.raises(ModelLoadError, match=rf"cannot read weights file {path}: it holds a "
                                             r"pickled Python object \(seg_accel_ros\.models\."
                                             r"cgnet\.CGNet\) .* save the model's state_dict"):
        create_model("cgnet", path)


@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_a_pickle_that_runs_code_is_refused_without_running_it(tmp_path: Path,
                                                               writer: str) -> None:
    marker = tmp_path / "payload_ran"
    payload = CodeOnLoad(marker)
    path = tmp_path / "evil.pt"
    if writer == "torch.save":  # zip container, like every modern checkpoint
        torch.save({"model": payload}, path)
    else:  # a bare (legacy) pickle stream
        path.write_bytes(pickle.dumps({"model": payload}, protocol=2))
    with pytest.raises(ModelLoadError, match=rf"cannot read weights file {path}: it holds a "
                                             r"pickled Python object \(posix\.mkdir\) that "
                                             r"loading would have to import or run"):
        create_model(MODEL, path)
    assert not marker.exists(), "loading the weights file executed its code"
    # the payload is live: a plain pickle load of the same bytes would have run it
    if writer == "pickle.dump":
        pickle.loads(path.read_bytes())
        assert marker.is_dir()


def test_a_live_payload_really_runs_under_plain_pickle(tmp_path: Path) -> None:
    """Control for the test above: the payload is not inert, so its absence proves something."""
    marker = tmp_path / "payload_ran"
    pickle.loads(pickle.dumps(CodeOnLoad(marker)))
    assert marker.is_dir()


def test_the_tools_know_before_loading_which_networks_would_be_untrained() -> None:
    assert not builds_untrained("swiftnet_lite0", "")  # shipped weights
    assert builds_untrained("cgnet", "") and builds_untrained("cgnet", None)
    assert not builds_untrained("cgnet", "cgnet_m3n21_camvid.pth")  # a file is given
