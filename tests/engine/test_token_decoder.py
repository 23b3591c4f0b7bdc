"""The learned token decoder: centroids plus a correction from the neighbouring tokens, with a bounded context."""
import pytest
import torch

from engine.errors import UserError
from engine.features import LogMelConfig
from engine.frame_tokens import CodebookError, FrameCodebook, load_codebook, save_codebook
from engine.layers.token_decoder import TokenDecoder, TokenDecoderConfig

K, C = 8, 6


def book_with_decoder(layers: int = 2, kernel: int = 3, trained: bool = True) -> FrameCodebook:
    g = torch.Generator().manual_seed(0)
    plain = FrameCodebook(torch.randn(K, C, generator=g), torch.randn(C, generator=g), torch.rand(C, generator=g) + 0.5)
    torch.manual_seed(1)
    net = TokenDecoder(K, C, TokenDecoderConfig(width=32, layers=layers, kernel=kernel))
    if trained:  # a decoder that has learned something: its last layer is no longer zero
        with torch.no_grad():
            net.out.weight.normal_()
            net.out.bias.normal_()
    return FrameCodebook(plain.centroids, plain.mean, plain.std, net.eval())


def test_an_untrained_decoder_is_the_centroid_lookup():
    book = book_with_decoder(trained=False)
    plain = FrameCodebook(book.centroids, book.mean, book.std)
    ids = torch.randint(0, K, (2, 30))
    assert torch.allclose(book.decode(ids), plain.decode(ids), atol=1e-6)


@pytest.mark.parametrize("layers,kernel", [(1, 3), (2, 3), (2, 5)])
def test_a_frame_reads_context_tokens_each_side_and_no_more(layers, kernel):
    book = book_with_decoder(layers, kernel)
    r = layers * (kernel // 2)
    assert book.context == r
    ids = torch.randint(0, K, (40,))
    base = book.decode(ids)
    assert base.shape == (C, 40)
    f = 20
    for j, reads in ((f + r, True), (f - r, True), (f + r + 1, False), (f - r - 1, False)):
        other = ids.clone()
        other[j] = (other[j] + 1) % K
        changed = not torch.allclose(book.decode(other)[:, f], base[:, f])
        assert changed == reads, (j, reads)


def test_chunks_decode_as_the_whole_clip():
    book = book_with_decoder(2, 5)
    ids = torch.randint(0, K, (1, 37))
    whole = book.decode(ids)
    for step in (1, 4, 11):
        parts = torch.cat([book.decode(ids, a, min(a + step, 37)) for a in range(0, 37, step)], -1)
        assert torch.allclose(parts, whole, atol=1e-5)
    # while a clip is planned, frames whose right context is known are already final
    planned = ids[:, :25]
    assert torch.allclose(book.decode(planned, 0, 25 - book.context), whole[:, :, :25 - book.context], atol=1e-5)


def test_the_decoder_travels_with_the_codebook(tmp_path):
    book = book_with_decoder()
    ids = torch.randint(0, K, (30,))
    again = FrameCodebook.from_tensors(book.to_tensors(), decoder=book.decoder.config)
    assert torch.equal(again.decode(ids), book.decode(ids))
    save_codebook(book, LogMelConfig(sample_rate=8000, hop=20, n_fft=80, n_mels=C), tmp_path / "cb")
    loaded, _, info = load_codebook(tmp_path / "cb")
    assert info["decoder"] == {"width": 32, "layers": 2, "kernel": 3}
    assert torch.equal(loaded.decode(ids), book.decode(ids))
    with pytest.raises(CodebookError, match="does not fit"):
        FrameCodebook.from_tensors(book.to_tensors(), decoder=TokenDecoderConfig(width=7, layers=2, kernel=3))


def test_bad_decoders_and_ranges_get_one_clear_message():
    with pytest.raises(UserError, match="odd kernel"):
        TokenDecoderConfig(kernel=4)
    book = book_with_decoder()
    with pytest.raises(CodebookError, match="frames 5..3"):
        book.decode(torch.zeros(10, dtype=torch.long), 5, 3)
    with pytest.raises(CodebookError, match="0..7"):
        book.decode(torch.tensor([0, 9]))
    with pytest.raises(CodebookError, match="reads 8 tokens"):
        FrameCodebook(torch.zeros(4, C), torch.zeros(C), torch.ones(C), book.decoder)


def test_a_broken_decoder_entry_is_named_not_a_traceback(tmp_path):
    import json

    import engine
    from engine.models.pipeline import PipelineConfig
    book = book_with_decoder()
    save_codebook(book, LogMelConfig(sample_rate=8000, hop=20, n_fft=80, n_mels=C), tmp_path / "cb")
    info = json.loads((tmp_path / "cb" / "codebook.json").read_text())
    info["decoder"] = {"width": 32, "layers": 2, "kernel": 3, "depth": 9}
    (tmp_path / "cb" / "codebook.json").write_text(json.dumps(info))
    with pytest.raises(CodebookError, match="token decoder this program cannot build"):
        load_codebook(tmp_path / "cb")
    vocoder = dict(blocks=1, layers_per_block=2, residual_channels=4, gate_channels=4, skip_channels=4, n_classes=64,
                   sample_rate=8000, local_cond_channels=C, local_cond_hop=20, local_cond_hidden=4, local_cond_layers=1,
                   features=dict(sample_rate=8000, hop=20, n_fft=80, n_mels=C))
    lm = dict(vocab_size=K + 2, hidden_size=4, layers=1, cell="gru", start_id=K + 1, eos_id=K)
    cfg = PipelineConfig("rnn", lm, "wavenet", vocoder, codebook_size=K, codebook_decoder={"kernel": 2})
    with pytest.raises(UserError, match="not a token decoder config"):
        engine.build_model("pipeline", **vars(cfg))
