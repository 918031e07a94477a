"""Metric cards: protocol fields, the generated README table, config hashes."""

import json

import ml_collections
import pytest

from gen_jax import cards


def _card(metric="fid", value=1.5, **kw):
  protocol = dict(model="vae_mnist", family="vae", dataset="mnist", step=4680, n_gen=10000,
                  n_real=10000, real_split="test", feature_network="mnist-cnn-v1",
                  feature_network_sha256="ab" * 32, seeds={"sample": 0}, config_hash="0" * 16,
                  git_commit="c" * 40, packages={"jax": "0.10.2"}, device_kind="cpu",
                  device_count=1, command="python launch.py ...")
  protocol.update(kw)
  return cards.make(metric, value, **protocol)


def test_a_card_holds_every_protocol_field_and_rejects_unknown_ones():
  c = _card(std=0.25)
  assert set(cards.PROTOCOL_FIELDS) <= set(c) and c["std"] == 0.25
  with pytest.raises(ValueError, match="n_gens"):
    cards.make("fid", 1.0, n_gens=5)


def test_cards_round_trip_through_jsonl(tmp_path):
  written = [_card(), _card("kid", 0.001, std=0.0002)]
  path = cards.write(tmp_path / "c.jsonl", written)
  assert cards.read([path]) == [json.loads(json.dumps(c)) for c in written]
  (tmp_path / "bad.jsonl").write_text("{not json\n")
  with pytest.raises(ValueError, match="bad.jsonl:1"):
    cards.read([tmp_path / "bad.jsonl"])


def test_readme_table_is_generated_between_the_markers_and_nowhere_else(tmp_path):
  path = cards.write(tmp_path / "c.jsonl", [_card(value=12.3456), _card("nll_iwae", 97.36, std=0.25,
                                                                         unit="nats", k=1000)])
  readme = tmp_path / "README.md"
  readme.write_text(f"# title\n\nkept\n\n{cards.BEGIN}\nold table\n{cards.END}\n\nalso kept\n")
  assert cards.update_readme(readme, [path]) == 2
  text = readme.read_text()
  assert "old table" not in text and "kept" in text and text.endswith("also kept\n")
  rows = [line for line in text.splitlines() if line.startswith("| vae_mnist")]
  assert rows[0].startswith("| vae_mnist | fid | 12.35 | 10000 / 10000 (test) | mnist-cnn-v1 `abababababab`")
  assert "| nll_iwae (k=1000) | 97.36 ± 0.25 nats |" in rows[1]
  # Regenerating gives the same file: the table is a function of the cards.
  cards.update_readme(readme, [path])
  assert readme.read_text() == text
  readme.write_text("no markers\n")
  with pytest.raises(ValueError, match="cards:begin"):
    cards.update_readme(readme, [path])


def test_config_hash_changes_with_any_field_and_not_with_order():
  a = ml_collections.ConfigDict({"x": 1, "y": {"z": 2}})
  b = ml_collections.ConfigDict({"y": {"z": 2}, "x": 1})
  c = ml_collections.ConfigDict({"x": 1, "y": {"z": 3}})
  assert cards.config_hash(a) == cards.config_hash(b) != cards.config_hash(c)
  assert len(cards.config_hash(a)) == 16


def test_comparison_ranks_models_by_fid_with_one_column_per_metric(tmp_path):
  cs = [_card("fid", 266.9, model="vae"), _card("fid", 4.2, std=0.3, model="dcgan (3 seeds)"),
        _card("inception_score", 8.99, std=0.09, model="dcgan (3 seeds)"),
        _card("knn_accuracy", 0.95, model="bigan", k=1), _card("knn_accuracy", 0.9, model="bigan", k=5),
        _card("nll_iwae", 97.4, model="vae", k=1000)]
  lines = cards.comparison(cs).splitlines()
  assert lines[0] == "| model | fid | inception_score | knn_accuracy |"
  assert lines[2:] == ["| dcgan (3 seeds) | 4.20 ± 0.30 | 8.99 ± 0.09 | — |",
                       "| vae | 266.90 | — | — |",
                       "| bigan | — | — | 0.9500 |"]
  readme = tmp_path / "README.md"
  readme.write_text(f"{cards.BEGIN}\n{cards.END}\nx\n{cards.COMPARE_BEGIN}\nold\n{cards.COMPARE_END}\n")
  path = cards.write(tmp_path / "c.jsonl", cs)
  cards.update_readme(readme, [path], [path])
  text = readme.read_text()
  assert "old" not in text and "| dcgan (3 seeds) | 4.20 ± 0.30 |" in text and "--compare" in text


def test_cards_command_rewrites_the_readme_tables(tmp_path, capsys):
  from tools import cards as cards_tool  # pylint: disable=import-outside-toplevel
  cs = [_card("fid", 266.9, model="vae"), _card("fid", 4.2, std=0.3, model="dcgan")]
  path = cards.write(tmp_path / "c.jsonl", cs)
  readme = tmp_path / "README.md"
  readme.write_text(f"{cards.BEGIN}\n{cards.END}\nx\n{cards.COMPARE_BEGIN}\nold\n{cards.COMPARE_END}\n")
  assert cards_tool.main([str(readme), str(path), f"--compare={path}"]) == 0
  assert capsys.readouterr().out == f"{readme}: table of 2 cards from 1 file(s)\n"
  text = readme.read_text()
  assert "old" not in text and "| dcgan | 4.20 ± 0.30 |" in text
  assert f"`python tools/cards.py README.md {path} --compare={path}`" in text
  # Without card files, or with a card file that is not there: one line, no traceback.
  assert cards_tool.main([str(readme)]) == 2
  assert cards_tool.main([str(readme), str(tmp_path / "missing.jsonl")]) == 1
  err = capsys.readouterr().err.splitlines()
  assert len(err) == 2 and err[0].startswith("error: usage:") and "missing.jsonl" in err[1]


def test_applications_table_has_a_row_per_model_and_columns_per_mask(tmp_path):
  c = [_card("completion_psnr", 12.345, std=0.1, mask="bottom", method="MWG", secs=30.0),
       _card("completion_accuracy", 0.8123, mask="bottom", method="MWG", secs=30.0),
       _card("completion_psnr", 9.0, std=0.1, mask="bottom", model="known-pixel mean (10 images)", method="m"),
       _card("completion_accuracy", 0.996, model="real images (10 images)", method="the real image"),
       _card("completion_psnr", 11.0, std=0.1, mask="bottom", model="nearest training image (10 images)",
             method="nn"),
       _card("ppl_encoder", 250.4, std=3.2, method="lerp", secs=5.0),
       _card("conditional_accuracy", 0.999, model="acgan", method="sample(labels=)"),
       _card("cas", 0.9512, model="acgan", config_hash="1" * 16, method="CNN conv16-pool-10, 3 steps"),
       _card("cas_real", 0.98, model="real train (mnist)", config_hash="1" * 16,
             method="CNN conv16-pool-10, 3 steps"),
       _card("cas", 0.93, model="acgan", config_hash="2" * 16, method="MLP 784-512-10, 3 steps"),
       _card("cas_real", 0.978, model="real train (mnist)", config_hash="2" * 16,
             method="MLP 784-512-10, 3 steps")]
  text = cards.applications(c)
  lines = text.splitlines()
  assert lines[0].startswith("| model | method | bottom: PSNR dB | bottom: accuracy |")
  assert "| vae_mnist | MWG | 12.35 | 81.2 % | 250 ± 3 | — | 35 |" in text
  assert lines[3].startswith("| known-pixel mean (10 images) | m | 9.00 | — |")
  assert lines[4].startswith("| nearest training image (10 images) | nn | 11.00 | — |")
  assert lines[5].startswith("| real images (10 images) | the real image | — | 99.6 % |")
  # a row per CAS classifier, each with the reference its own run measured
  assert "| acgan | 99.90 % | CNN conv16-pool-10 | 95.12 % | 98.00 % | — | — |" in text
  assert "| acgan | 99.90 % | MLP 784-512-10 | 93.00 % | 97.80 % | — | — |" in text
  readme = tmp_path / "README.md"
  readme.write_text("x\n<!-- cards:begin -->\n<!-- cards:end -->\n<!-- apps:begin -->\nold\n"
                    "<!-- apps:end -->\n")
  path = cards.write(tmp_path / "apps.jsonl", c)
  cards.update_readme(readme, [path], apps_files=[path])
  assert "old" not in readme.read_text() and "| vae_mnist | MWG | 12.35 |" in readme.read_text()


def test_representation_tables_have_a_row_per_source_and_a_table_per_dataset():
  lp = lambda v, n, **kw: _card("linear_probe_accuracy", v, labels=n,
                                **({"features": "encoder", "dim": 20} | kw))
  c = [lp(0.80, 100, std=0.012), lp(0.95, 60000),
       _card("knn_accuracy", 0.97, k=1, labels=60000, features="encoder", dim=20),
       _card("trustworthiness", 0.99123, k=10, features="encoder", dim=20),
       lp(0.74, 100, std=0.01, model="raw pixels (mnist)", family="data", features="pixels"),
       lp(0.70, 100, dataset="fashion_mnist", features="discriminator", model="gan")]
  text = cards.representation(c)
  assert text.index("**fashion_mnist**") < text.index("**mnist**")
  rows = [line for line in text.splitlines() if line.startswith("| vae_mnist") or "pixels" in line]
  assert rows[0] == ("| vae_mnist: encoder | 20 | 80.00 ± 1.20 | — | — | 95.00 | 97.00 | — "
                     "| 0.9912 |")
  assert rows[1].startswith("| raw pixels (mnist) | 20 | 74.00 ± 1.00 |")   # ranked below
  assert "| gan: discriminator | 20 | 70.00 |" in text


def test_compression_table_gives_the_rate_at_the_target_and_both_ends_of_each_curve():
  pt = lambda metric, v, bits, **kw: _card(metric, v, codec="vae_mnist code", bits=bits, **kw)
  c = [pt("codec_bits", 10.0, 10.0), pt("codec_psnr", 15.0, 10.0), pt("codec_accuracy", 0.5, 10.0),
       pt("codec_bits", 40.0, 40.0), pt("codec_psnr", 20.0, 40.0), pt("codec_accuracy", 0.97, 40.0),
       _card("bits_at_accuracy", 31.7, codec="vae_mnist code"),
       _card("codec_bits", 38.0, codec="bits-back (KL)", bits=38.0),   # named with its model
       _card("codec_accuracy", 0.97, codec="bits-back (KL)", bits=38.0),
       _card("codec_bits", 3000.0, codec="PNG", bits=3000.0, model="PNG (mnist)", family="data"),
       _card("codec_accuracy", 0.996, codec="PNG", bits=3000.0, model="PNG (mnist)",
             family="data")]
  lines = cards.compression(c).splitlines()
  assert lines[2] == ("| mnist | vae_mnist code | 31.7 | 10 bits, 15.0 dB, 50.0 % "
                      "| 40 bits, 20.0 dB, 97.0 % |")
  assert lines[3].startswith("| mnist | vae_mnist bits-back (KL) | — (one point) | 38 bits,")
  assert lines[4] == "| mnist | PNG | — (one point) | 3000 bits, lossless, 99.6 % | — |"
  jpeg = [_card(m, v, codec="JPEG", bits=b, family="data") for b in (800.0, 1600.0)
          for m, v in (("codec_bits", b), ("codec_accuracy", 0.99))]
  table = cards.compression(jpeg + [_card("bits_at_accuracy", 800.0, codec="JPEG", family="data")])
  assert "| mnist | JPEG | ≤ 800.0 |" in table    # every point above the target: a bound
