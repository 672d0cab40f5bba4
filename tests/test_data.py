"""Data: the offline sets, and the real loaders on small copies of each real layout written here."""
from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from ggcn.measure import data

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)
CIFAR_CLASSES = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
WNIDS = ["n02124075", "n01443537", "n04067472"]  # deliberately not sorted: labels follow wnids.txt


# ----------------------------------------------------------------------------- writers of fake data sets


def framed(path: Path, width: int, height: int, inner: int, colour=GREEN, frame=RED) -> None:
    """An image of ``frame`` colour with a centred ``inner``×``inner`` square of ``colour``."""
    a = np.zeros((height, width, 3), np.uint8)
    a[:] = frame
    top, left = (height - inner) // 2, (width - inner) // 2
    a[top : top + inner, left : left + inner] = colour
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a).save(path, quality=95)


def solid(path: Path, colour, size: int = 8, mode: str = "RGB") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, (size, size), colour).save(path)


def truncated_jpeg(path: Path) -> None:
    """A JPEG cut off halfway, as an interrupted download leaves it."""
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buffer, "JPEG")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])


def is_green(x: torch.Tensor) -> bool:
    """Every pixel green up to JPEG ringing at the edges (a red pixel has red ≈ 1, green ≈ −1)."""
    return bool((x[:, 0] < -0.5).all() and (x[:, 1] > 0.5).all())


def write_cifar(root: Path, per_batch: int = 4) -> Path:
    """The CIFAR-10 python layout: rows of 3072 bytes (1024 R, 1024 G, 1024 B), labels, batches.meta.

    Red grows with the column (8·col), green is 0, blue is 20·label, so the tests can check
    the plane order and orientation.
    """
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    red = np.tile(np.arange(32, dtype=np.uint8) * 8, (32, 1)).ravel()
    for k, name in enumerate([*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]):
        labels = [(k + i) % 10 for i in range(per_batch)]
        rows = [np.concatenate([red, np.zeros(1024, np.uint8), np.full(1024, 20 * y, np.uint8)]) for y in labels]
        batch = {b"batch_label": name.encode(), b"labels": labels, b"data": np.stack(rows),
                 b"filenames": [f"{name}_{i}.png".encode() for i in range(per_batch)]}
        (folder / name).write_bytes(pickle.dumps(batch))
    meta = {b"num_cases_per_batch": per_batch, b"label_names": CIFAR_CLASSES, b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta))
    return folder


def write_celeba(root: Path, partition: bool = True) -> Path:
    """Six 178×218 'faces' (green centre 140×140, red outside); 4 train, 1 valid, 1 test."""
    folder = root / "celeba"
    names = [f"{i:06d}.jpg" for i in range(1, 7)]
    for name in names:
        framed(folder / "img_align_celeba" / name, 178, 218, data.CELEBA_CROP)
    if partition:
        codes = [0, 0, 0, 0, 1, 2]
        (folder / "list_eval_partition.txt").write_text("".join(f"{n} {c}\n" for n, c in zip(names, codes)))
    return folder


def write_tiny_imagenet(root: Path) -> Path:
    """Two training images per wnid (colour by class; one grey JPEG), three validation images."""
    folder = root / "tiny-imagenet-200"
    folder.mkdir(parents=True)
    (folder / "wnids.txt").write_text("\n".join(WNIDS) + "\n")
    colours = [RED, GREEN, BLUE]
    for w, c in zip(WNIDS, colours):
        for i in range(2):
            solid(folder / "train" / w / "images" / f"{w}_{i}.JPEG", c, 64)
        (folder / "train" / w / f"{w}_boxes.txt").write_text("")
    solid(folder / "train" / WNIDS[0] / "images" / f"{WNIDS[0]}_2.JPEG", 128, 64, mode="L")
    rows = [("val_0.JPEG", WNIDS[2]), ("val_1.JPEG", WNIDS[0]), ("val_2.JPEG", WNIDS[1])]
    for f, w in rows:
        solid(folder / "val" / "images" / f, colours[WNIDS.index(w)], 64)
    (folder / "val" / "val_annotations.txt").write_text("".join(f"{f}\t{w}\t0\t0\t63\t63\n" for f, w in rows))
    return folder


def write_sun(root: Path) -> Path:
    """SUN397: <letter>/<class>/sun_*.jpg, one class two levels deep; wide images with red side strips."""
    folder = root / "SUN397"
    (folder).mkdir(parents=True)
    (folder / "ClassName.txt").write_text("/a/abbey\n/a/apartment_building/outdoor\n/b/bedroom\n")
    for rel in ["a/abbey/sun_a1.jpg", "a/abbey/sun_a2.jpg", "a/apartment_building/outdoor/sun_o1.jpg",
                "b/bedroom/sun_b1.jpg"]:
        framed(folder / rel, 60, 40, 40)
    return folder


# ----------------------------------------------------------------------------- offline sets


def test_lfw_subset_ships_with_skimage_and_needs_no_download():
    import skimage.data

    assert (Path(skimage.data.__file__).parent / "lfw_subset.npy").is_file()
    assert skimage.data.lfw_subset().shape == (200, 25, 25)


def test_lfw_faces_are_the_first_100_crops_not_the_background_patches():
    import skimage.data

    faces = data.lfw_faces(size=25)
    expected = torch.as_tensor(skimage.data.lfw_subset()[:100], dtype=torch.float32) * 2 - 1
    assert faces.shape == (100, 1, 25, 25)
    torch.testing.assert_close(faces[:, 0], expected)


def test_lfw_non_faces_are_the_other_100_crops():
    import skimage.data

    patches = data.lfw_faces(size=25, faces=False)
    expected = torch.as_tensor(skimage.data.lfw_subset()[100:], dtype=torch.float32) * 2 - 1
    torch.testing.assert_close(patches[:, 0], expected)


@pytest.mark.parametrize("name,count,channels", [
    ("lfw", 100, 1), ("digits", 1797, 1), ("brick", 1, 1), ("grass", 1, 1), ("gravel", 1, 1),
    ("astronaut", 1, 3), ("coffee", 1, 3), ("chelsea", 1, 3), ("rocket", 1, 3), ("hubble_deep_field", 1, 3),
])
def test_every_offline_set_loads_in_range(name, count, channels):
    x = data.load_images(name, size=12)
    assert x.shape == (count, channels, 12, 12) and x.dtype == torch.float32
    assert x.min() >= -1 and x.max() <= 1 and x.std() > 0.01
    assert name in data.OFFLINE_SETS


def test_texture_crops_are_seeded_windows():
    crops = data.texture("gravel", size=16, n_crops=5, seed=3)
    assert crops.shape == (5, 1, 16, 16)
    assert torch.equal(crops, data.texture("gravel", size=16, n_crops=5, seed=3))
    assert not torch.equal(crops, data.texture("gravel", size=16, n_crops=5, seed=4))
    assert torch.equal(data.load_images("gravel", size=16, n=5, seed=3), crops)
    with pytest.raises(ValueError, match="n_crops must be a positive integer"):
        data.texture("gravel", n_crops=0)
    with pytest.raises(ValueError, match="unknown texture 'wood'"):
        data.texture("wood")


def test_photo_is_one_square_colour_image():
    x = data.photo("chelsea", size=20)
    assert x.shape == (1, 3, 20, 20) and x.min() >= -1 and x.max() <= 1
    with pytest.raises(ValueError, match="unknown photo 'moon'"):
        data.photo("moon")


def test_digits_come_with_labels_0_to_9():
    x, y = data.digits(size=8)
    assert x.shape == (1797, 1, 8, 8) and y.shape == (1797,) and y.dtype == torch.long
    assert set(y.tolist()) == set(range(10))
    x5, y5 = data.digits(size=8, n=5)
    assert torch.equal(x5, x[:5]) and torch.equal(y5, y[:5])


@pytest.mark.parametrize("name", data.TOYS)
def test_toy2d_point_clouds(name):
    x = data.toy2d(name, n=300, seed=1)
    assert x.shape == (300, 2) and torch.isfinite(x).all() and x.abs().max() < 3
    assert torch.equal(x, data.toy2d(name, n=300, seed=1))
    assert not torch.equal(x, data.toy2d(name, n=300, seed=2))


def test_toy2d_rejects_unknown_names_and_load_images_points_to_it():
    with pytest.raises(ValueError, match="unknown 2-D toy 'square'"):
        data.toy2d("square")
    with pytest.raises(ValueError, match=r"'ring' is a 2-D point set, use toy2d\('ring'\)"):
        data.load_images("ring")


@pytest.mark.parametrize("n", [0, -1, 101, 2.5])
def test_lfw_faces_n_must_fit_the_100_faces(n):
    with pytest.raises(ValueError, match=r"n must be an integer in 1\.\.100 \(the set has 100 images\)"):
        data.lfw_faces(8, n=n)


@pytest.mark.parametrize("n", [0, -1, 1798])
def test_digits_n_must_fit_the_1797_digits(n):
    with pytest.raises(ValueError, match=r"n must be an integer in 1\.\.1797"):
        data.digits(8, n=n)


@pytest.mark.parametrize("n", [0, -3, 1.5])
def test_toy2d_n_must_be_a_positive_integer(n):
    with pytest.raises(ValueError, match="n must be a positive integer"):
        data.toy2d("ring", n=n)


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5, "0"])
def test_seeds_are_integers_in_0_to_2_32(seed):
    for draw in (lambda: data.load_images("lfw", size=8, n=3, seed=seed), lambda: data.toy2d("moons", seed=seed),
                 lambda: data.texture("brick", size=8, n_crops=2, seed=seed)):
        with pytest.raises(ValueError, match=r"seed must be an integer in \[0, 2\*\*32\)"):
            draw()


def test_load_images_n_is_a_seeded_draw_without_replacement():
    x, y = data.load_images("digits", size=8, n=7, seed=5, labels=True)
    all_x, all_y = data.digits(size=8)
    idx = torch.randperm(len(all_x), generator=torch.Generator().manual_seed(5))[:7]
    assert torch.equal(x, all_x[idx]) and torch.equal(y, all_y[idx])


def test_grey_turns_a_photo_into_luma():
    colour = data.load_images("astronaut", size=8)
    grey = data.load_images("astronaut", size=8, grey=True)
    luma = 0.299 * colour[:, 0] + 0.587 * colour[:, 1] + 0.114 * colour[:, 2]
    assert grey.shape == (1, 1, 8, 8)
    torch.testing.assert_close(grey[:, 0], luma)
    assert torch.equal(data.load_images("lfw", size=8, grey=True), data.load_images("lfw", size=8))


def test_offline_sets_without_labels_say_so():
    for name in ["lfw", "brick", "astronaut"]:
        with pytest.raises(ValueError, match=f"{name} has no class labels; call it with labels=False"):
            data.load_images(name, labels=True)


def test_offline_dataset_feeds_a_dataloader():
    ds = data.image_dataset("digits", size=8, labels=True)
    xb, yb = next(iter(DataLoader(ds, batch_size=10)))
    assert xb.shape == (10, 1, 8, 8) and torch.equal(yb, data.digits(size=8)[1][:10])


# ----------------------------------------------------------------------------- arguments


def test_known_names_are_offline_then_real():
    assert data.IMAGE_SETS == data.OFFLINE_SETS + data.REAL_SETS
    assert set(data.REAL_SETS) == set(data.SOURCES)
    assert not set(data.TOYS) & set(data.IMAGE_SETS)


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown data set 'imagenet'") as err:
        data.load_images("imagenet")
    assert all(name in str(err.value) for name in data.IMAGE_SETS)


@pytest.mark.parametrize("size", [0, -8, 3, 513, 16.0, "32", True, None])
def test_size_must_be_a_supported_integer(size):
    with pytest.raises(ValueError, match="image size must be an integer between 4 and 512"):
        data.load_images("lfw", size=size)


@pytest.mark.parametrize("n", [0, -1, 101, 1.5])
def test_n_must_fit_the_set(n):
    with pytest.raises(ValueError, match=r"n must be an integer in 1\.\.100 \(the set has 100 images\)"):
        data.load_images("lfw", n=n)


def test_texture_n_must_be_positive():
    with pytest.raises(ValueError, match="n must be a positive integer, got 0"):
        data.load_images("brick", n=0)


def test_a_tensor_of_images_must_be_square():
    with pytest.raises(ValueError, match=r"pixels: images must be a tensor \(N, C, S, S\) of square images, "
                                         r"got shape \(2, 1, 8, 6\); resize or crop them"):
        data.TensorImages("pixels", torch.zeros(2, 1, 8, 6), None, grey=False, labels=False)
    with pytest.raises(ValueError, match=r"got shape \(8, 8\)"):
        data.TensorImages("pixels", torch.zeros(8, 8), None, grey=False, labels=False)


def test_an_image_set_hands_out_only_the_requested_size():
    class Wrong(data.ImageSet):
        def __len__(self) -> int:
            return 2

        def _decode(self, idx):
            return torch.zeros(len(idx), 3, 32, 32)

    ds = Wrong("wrong", size=16, grey=False, labels=False)
    with pytest.raises(ValueError, match=r"wrong: decoded images of shape \(2, 3, 32, 32\), not the requested 16×16"):
        ds.images([0, 1])


def test_images_of_other_sizes_come_back_at_the_requested_size(tmp_path):
    solid(tmp_path / "small.png", RED, 6)
    framed(tmp_path / "wide.jpg", 90, 30, 30)
    solid(tmp_path / "large.png", BLUE, 100)
    x = data.load_images("folder", root=tmp_path, size=16)
    assert x.shape == (3, 3, 16, 16)
    assert data.load_images("cifar10", root=write_cifar(tmp_path / "c").parent, size=64).shape == (20, 3, 64, 64)


def test_a_truncated_image_names_the_file_and_what_to_do(tmp_path):
    solid(tmp_path / "cats" / "good.png", RED)
    truncated_jpeg(tmp_path / "cats" / "cut.jpg")
    ds = data.image_dataset("folder", root=tmp_path, size=8)
    assert ds.images([1]).shape == (1, 3, 8, 8)  # the good file still loads
    with pytest.raises(OSError) as err:
        ds.images([0])
    msg = str(err.value)
    cut = tmp_path / "cats" / "cut.jpg"
    assert msg.startswith(f"folder: cannot read the image file {cut} (image file is truncated")
    assert "damaged or not an image: delete or replace it, or download and extract the data set again" in msg


def test_a_file_that_is_not_an_image_names_the_file(tmp_path):
    solid(tmp_path / "lsun" / "bedroom_train" / "a.png", RED)
    (tmp_path / "lsun" / "bedroom_train" / "b.webp").write_bytes(b"<html>404 not found</html>")
    with pytest.raises(OSError, match=r"lsun-bedroom: cannot read the image file .*b\.webp \(cannot identify"):
        data.load_images("lsun-bedroom", root=tmp_path, size=8)


def test_a_data_root_that_is_a_file_says_so(tmp_path):
    root = tmp_path / "data.tar.gz"
    root.write_bytes(b"")
    with pytest.raises(FileNotFoundError, match=f"the data root {root} is a file, not a folder"):
        data.load_images("cifar10", root=root)
    with pytest.raises(FileNotFoundError, match=f"folder: expected {root} \\(the data root {root} is a file"):
        data.load_images("folder", root=root)


def test_split_must_be_one_the_set_has():
    with pytest.raises(ValueError, match=r"cifar10 has the splits \('train', 'test'\), got split='val'"):
        data.load_images("cifar10", root="/unused", split="val")
    with pytest.raises(ValueError, match=r"lfw has the splits \('train',\)"):
        data.load_images("lfw", split="test")


def test_a_real_set_without_root_names_data_root_and_the_env_var(monkeypatch):
    monkeypatch.delenv(data.DATA_ENV, raising=False)
    with pytest.raises(ValueError, match=r"pass root=\.\.\. \(the chapters' `data_root` parameter\) or set "
                                         r"the GGCN_DATA environment variable"):
        data.load_images("cifar10")


def test_the_env_var_is_the_default_root(tmp_path, monkeypatch):
    write_cifar(tmp_path)
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path))
    assert data.load_images("cifar10").shape == (20, 3, 32, 32)
    assert data.data_root() == tmp_path and data.data_root(tmp_path / "x") == tmp_path / "x"


# ----------------------------------------------------------------------------- CIFAR-10


def test_cifar10_reads_the_python_batches(tmp_path):
    write_cifar(tmp_path)
    x, y = data.load_images("cifar10", root=tmp_path, labels=True)
    assert x.shape == (20, 3, 32, 32) and y.tolist() == [(k + i) % 10 for k in range(5) for i in range(4)]
    torch.testing.assert_close(x[:, 0, 5, :], (torch.arange(32.0) * 8 / 255 * 2 - 1).expand(20, 32))
    assert (x[:, 1] == -1).all()
    torch.testing.assert_close(x[:, 2, 0, 0], 20 * y.float() / 255 * 2 - 1)


def test_cifar10_test_split_names_and_dataset(tmp_path):
    write_cifar(tmp_path)
    ds = data.image_dataset("cifar10", root=tmp_path, split="test", size=16, labels=True)
    assert len(ds) == 4 and ds.classes[:2] == ("airplane", "automobile")
    x, y = ds[1]
    assert x.shape == (3, 16, 16) and y == 6 and ds.classes[y] == "frog"
    xb, yb = next(iter(DataLoader(ds, batch_size=4)))
    assert xb.shape == (4, 3, 16, 16) and yb.tolist() == [5, 6, 7, 8]


def test_cifar10_n_draws_a_seeded_subset_and_grey_has_one_channel(tmp_path):
    write_cifar(tmp_path)
    x = data.load_images("cifar10", root=tmp_path, n=6, seed=2, size=8, grey=True)
    assert x.shape == (6, 1, 8, 8) and x.min() >= -1 and x.max() <= 1
    assert torch.equal(x, data.load_images("cifar10", root=tmp_path, n=6, seed=2, size=8, grey=True))
    with pytest.raises(ValueError, match=r"n must be an integer in 1\.\.20"):
        data.load_images("cifar10", root=tmp_path, n=21)


def test_cifar10_missing_folder_says_where_and_how(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        data.load_images("cifar10", root=tmp_path)
    msg = str(err.value)
    assert f"expected {tmp_path / 'cifar-10-batches-py'}" in msg and "data_batch_1" in msg
    assert "cifar-10-python.tar.gz" in msg and "download=True" in msg
    with pytest.raises(FileNotFoundError, match=r"the data root .*nowhere does not exist"):
        data.load_images("cifar10", root=tmp_path / "nowhere")


def test_cifar10_missing_batch_and_broken_batch(tmp_path):
    folder = write_cifar(tmp_path)
    (folder / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match="with the file data_batch_3"):
        data.load_images("cifar10", root=tmp_path)
    (folder / "data_batch_3").write_bytes(pickle.dumps({b"pixels": 0}))
    with pytest.raises(ValueError, match="data_batch_3 is not a CIFAR-10 python batch"):
        data.load_images("cifar10", root=tmp_path)


def test_cifar10_download_fetches_with_torchvision_only_when_missing(tmp_path, monkeypatch):
    import torchvision.datasets

    calls = []

    def fake_cifar10(root, train, download):
        calls.append((root, train, download))
        write_cifar(Path(root))

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", fake_cifar10)
    root = tmp_path / "new"
    assert data.load_images("cifar10", root=root, download=True).shape == (20, 3, 32, 32)
    data.load_images("cifar10", root=root, download=True)
    assert calls == [(str(root), True, True)]


# ----------------------------------------------------------------------------- CelebA


def test_celeba_splits_follow_the_partition_file_and_faces_are_centre_cropped(tmp_path):
    write_celeba(tmp_path)
    x = data.load_images("celeba", root=tmp_path, size=16)
    assert x.shape == (4, 3, 16, 16)
    assert is_green(x)  # the red frame outside the 140×140 centre is cut away
    assert len(data.load_images("celeba", root=tmp_path, split="valid")) == 1
    assert len(data.load_images("celeba", root=tmp_path, split="test")) == 1
    assert len(data.load_images("celeba", root=tmp_path, split="all")) == 6


def test_celeba_without_partition_file_needs_split_all(tmp_path):
    write_celeba(tmp_path, partition=False)
    assert data.load_images("celeba", root=tmp_path, split="all", size=8).shape == (6, 3, 8, 8)
    with pytest.raises(FileNotFoundError, match=r"list_eval_partition\.txt to select split='train' "
                                                r"\(split='all' uses every image without it\)"):
        data.load_images("celeba", root=tmp_path)


def test_celeba_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"celeba: expected .*celeba.img_align_celeba.*img_align_celeba\.zip"):
        data.load_images("celeba", root=tmp_path)
    folder = write_celeba(tmp_path)
    (folder / "img_align_celeba" / "000002.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"1 images of split 'train' .* missing .*first: 000002\.jpg"):
        data.load_images("celeba", root=tmp_path)
    with pytest.raises(ValueError, match="celeba has no class labels"):
        data.load_images("celeba", root=tmp_path, split="all", labels=True)
    for f in (folder / "img_align_celeba").iterdir():
        f.unlink()
    with pytest.raises(FileNotFoundError, match="no image files .* found under .*img_align_celeba"):
        data.load_images("celeba", root=tmp_path, split="all")


# ----------------------------------------------------------------------------- LSUN bedroom


def test_lsun_reads_an_exported_folder_recursively(tmp_path):
    folder = tmp_path / "lsun" / "bedroom_train"
    solid(folder / "0" / "1" / "a.webp", RED, 40)
    solid(folder / "0" / "2" / "b.png", GREEN, 40)
    solid(folder / "c.JPG", BLUE, 40)
    (folder / "notes.txt").write_text("not an image")
    x = data.load_images("lsun-bedroom", root=tmp_path, size=8)
    assert x.shape == (3, 3, 8, 8)
    assert sorted(x.mean((2, 3)).argmax(1).tolist()) == [0, 1, 2]  # one red, one green, one blue


def test_lsun_missing_folder_explains_the_export_and_spots_an_lmdb(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        data.load_images("lsun-bedroom", root=tmp_path, split="val")
    msg = str(err.value)
    assert f"expected {tmp_path / 'lsun' / 'bedroom_val'}" in msg
    assert f"export bedroom_val_lmdb --out_dir {tmp_path}/lsun/bedroom_val" in msg and "lmdb package" in msg
    (tmp_path / "lsun" / "bedroom_train_lmdb").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="found the LMDB .*bedroom_train_lmdb; export it to image files"):
        data.load_images("lsun-bedroom", root=tmp_path)


def test_lsun_cannot_be_downloaded(tmp_path):
    with pytest.raises(ValueError, match="lsun-bedroom cannot be downloaded by ggcn; download bedroom_train_lmdb"):
        data.load_images("lsun-bedroom", root=tmp_path, download=True)


# ----------------------------------------------------------------------------- Tiny ImageNet


def test_tiny_imagenet_train_labels_follow_wnids_txt(tmp_path):
    write_tiny_imagenet(tmp_path)
    ds = data.image_dataset("tiny-imagenet", root=tmp_path, size=16, labels=True)
    assert ds.classes == tuple(WNIDS) and len(ds) == 7
    x = ds.images(range(len(ds)))
    assert x.shape == (7, 3, 16, 16)  # the grey JPEG comes back with three channels
    colour = {0: 0, 1: 1, 2: 2}  # wnid i was painted RED, GREEN, BLUE
    for i in range(len(ds)):
        if ds.paths[i].name != f"{WNIDS[0]}_2.JPEG":
            assert x[i].mean((1, 2)).argmax().item() == colour[int(ds.targets[i])]
    assert torch.bincount(ds.targets).tolist() == [3, 2, 2]


def test_tiny_imagenet_val_labels_come_from_the_annotations(tmp_path):
    write_tiny_imagenet(tmp_path)
    x, y = data.load_images("tiny-imagenet", root=tmp_path, split="val", size=8, labels=True)
    assert x.shape == (3, 3, 8, 8) and y.tolist() == [2, 0, 1]
    assert x.mean((2, 3)).argmax(1).tolist() == [2, 0, 1]


def test_tiny_imagenet_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"tiny-imagenet-200\.zip"):
        data.load_images("tiny-imagenet", root=tmp_path)
    folder = write_tiny_imagenet(tmp_path)
    (folder / "val" / "val_annotations.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"expected .*val_annotations\.txt"):
        data.load_images("tiny-imagenet", root=tmp_path, split="val")
    for f in (folder / "train" / WNIDS[1] / "images").iterdir():
        f.unlink()
    (folder / "train" / WNIDS[1] / "images").rmdir()
    with pytest.raises(FileNotFoundError, match=f"expected .*{WNIDS[1]}.images"):
        data.load_images("tiny-imagenet", root=tmp_path)
    (folder / "wnids.txt").unlink()
    with pytest.raises(FileNotFoundError, match="with the file wnids.txt"):
        data.load_images("tiny-imagenet", root=tmp_path)


def test_tiny_imagenet_download_unzips_into_the_root(tmp_path, monkeypatch):
    import torchvision.datasets.utils

    monkeypatch.setattr(torchvision.datasets.utils, "download_and_extract_archive",
                        lambda url, root: write_tiny_imagenet(Path(root)) if url == data.TINY_IMAGENET_URL else None)
    assert data.load_images("tiny-imagenet", root=tmp_path, size=8, download=True).shape == (7, 3, 8, 8)


# ----------------------------------------------------------------------------- SUN and any ImageFolder


def test_sun_classes_are_the_nested_folders_and_images_are_centre_squares(tmp_path):
    write_sun(tmp_path)
    x, y = data.load_images("sun", root=tmp_path, size=8, labels=True)
    ds = data.image_dataset("sun", root=tmp_path)
    assert ds.classes == ("a/abbey", "a/apartment_building/outdoor", "b/bedroom")
    assert x.shape == (4, 3, 8, 8) and sorted(y.tolist()) == [0, 0, 1, 2]
    assert is_green(x)  # the red strips left and right of the 40×40 centre are cut away


def test_sun_missing_folder_says_how_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"expected .*SUN397.*SUN397\.tar\.gz.*name='folder'"):
        data.load_images("sun", root=tmp_path)


def test_folder_of_pngs_with_class_subfolders(tmp_path):
    for c, colour in [("cats", RED), ("dogs", BLUE)]:
        for i in range(3):
            solid(tmp_path / c / f"{i}.png", colour, 12)
    x, y = data.load_images("folder", root=tmp_path, size=4, labels=True, n=4, seed=0)
    assert x.shape == (4, 3, 4, 4)
    assert torch.equal(x[:, 0].mean((1, 2)) > 0, y == 0) and torch.equal(x[:, 2].mean((1, 2)) > 0, y == 1)
    batch = next(iter(DataLoader(data.image_dataset("folder", root=tmp_path, size=4), batch_size=6)))
    assert batch.shape == (6, 3, 4, 4)


def test_a_flat_folder_is_one_class(tmp_path):
    for i in range(2):
        solid(tmp_path / f"{i}.png", GREEN)
    ds = data.image_dataset("folder", root=tmp_path, size=4, labels=True)
    assert ds.classes == (".",) and ds.targets.tolist() == [0, 0]


def test_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"folder: expected .*missing\. It should hold <class>/\*\.jpg"):
        data.load_images("folder", root=tmp_path / "missing")
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=r"no image files \(\.jpg, .*\) found under .*empty"):
        data.load_images("folder", root=tmp_path / "empty")
    solid(tmp_path / "one" / "a.png", RED)
    with pytest.raises(ValueError, match="folder cannot be downloaded by ggcn; point root at a folder of images"):
        data.load_images("folder", root=tmp_path / "two", download=True)
    assert not (tmp_path / "two").exists()
