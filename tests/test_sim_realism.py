"""Roadside props and dashcam effects: clutter that is not paint, and labels that stay exact."""

import numpy as np

from lane_seg.camera import Camera
from lane_seg.sim.world import dashcam
from lane_seg.sim.world.collect import render_frame
from lane_seg.sim.world.render import render
from lane_seg.sim.world.road import Road
from lane_seg.sim.world.scene import SimConfig, sample_scene
from lane_seg.sim.world.view import ego_pose

CAM = Camera.from_fov(512, 256, 60, height_m=1.5, pitch_deg=3.0)
QUIET = dict(motion_blur_probability=0, jpeg_probability=0, hood=False)


def test_settings_off_render_frames_as_before():
    # New settings default to off, and then draw nothing from the random stream.
    a = render_frame(3, 7, SimConfig())
    b = render_frame(3, 7, SimConfig(props=0.0, distortion_probability=0.0, osd_probability=0.0))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_props_line_the_road_and_hide_the_paint_they_cover():
    cfg = SimConfig(lanes=(2, 2), vehicles=(0, 0), fog_probability=0, night_probability=0)
    rng = np.random.default_rng(1)
    road = Road.from_curvature(np.zeros(2001), 0.5)
    scene = sample_scene(rng, SimConfig(**{**cfg.__dict__, "props": 1.0}), road)
    assert scene.props and scene.prop_s == sorted(scene.prop_s)
    edge = scene.half_width
    for prop in scene.props:  # nothing stands on the carriageway
        for face in prop.faces:
            _, d = road.locate(*face.points[:, :2].mean(axis=0))
            assert abs(d) > edge - 0.3
    pose = ego_pose(scene, 100.0, scene.lane_center(0))
    image, mask = render(scene, CAM, pose, np.random.default_rng(0), **QUIET)
    bare = sample_scene(np.random.default_rng(1), cfg, road)
    bare_image, bare_mask = render(bare, CAM, pose, np.random.default_rng(0), **QUIET)
    # Same road and paint; the props change the picture above and beside the road...
    assert np.abs(image.astype(int) - bare_image.astype(int)).mean() > 2
    # ...and can only take paint labels away (where they stand in front of it).
    assert not (mask & ~bare_mask).any()


def test_distortion_moves_image_and_label_together():
    img = np.zeros((256, 512, 3), np.float32)
    mask = np.zeros((256, 512), np.uint8)
    img[200:206, 400:406] = 1.0
    mask[200:206, 400:406] = 255
    out, out_mask = dashcam.distort(img, mask, 0.3)
    ys, xs = np.nonzero(out_mask)
    iy, ix = np.nonzero(out[..., 0] > 0.5)
    assert abs(ys.mean() - iy.mean()) < 1 and abs(xs.mean() - ix.mean()) < 1
    # With the corners fixed, barrel distortion magnifies the centre: a point between centre
    # and corner moves outwards.
    assert xs.mean() > 405 and ys.mean() > 204
    # Corners stay corners.
    corner = np.zeros((256, 512), np.uint8)
    corner[-2:, -2:] = 255
    assert dashcam.distort(img, corner, 0.3)[1][-1, -1] == 255


def test_osd_text_stays_in_the_corners_and_leaves_the_road_alone():
    img = np.full((256, 512, 3), 90, np.uint8)
    dashcam.overlay_text(img, np.random.default_rng(4))
    changed = np.argwhere((img != 90).any(axis=2))
    assert len(changed) > 20
    # Text rows are within a band at the top or the bottom of the frame.
    assert ((changed[:, 0] < 40) | (changed[:, 0] > 215)).mean() > 0.95


def test_hood_clears_the_label_beneath_it():
    img = np.full((256, 512, 3), 0.5, np.float32)
    mask = np.full((256, 512), 255, np.uint8)
    dashcam.hood(img, mask, np.random.default_rng(0))
    assert mask[-1].max() == 0 and mask[0].min() == 255
    assert not np.allclose(img[-1], 0.5)


def test_a_tall_bonnet_hides_the_middle_and_leaves_the_road_beside_it():
    img = np.full((256, 512, 3), 0.5, np.float32)
    mask = np.full((256, 512), 255, np.uint8)
    tall = dashcam.HoodStyle(top=(0.7, 0.7), bulge=(0.4, 0.4))
    dashcam.hood(img, mask, np.random.default_rng(0), tall)
    assert mask[200:, 236:276].max() == 0  # the hump, mid-frame from 0.7 of the height down
    assert mask[170].min() == 255  # nothing above its top
    assert 255 in (mask[-1, 0], mask[-1, -1])  # the road beside it, at a bottom corner


def test_a_glossy_bonnet_mirrors_what_its_style_names():
    """Sky above, road below: a "sky" bonnet shows the sky's colour, a "road" one the road's."""
    seen = {}
    for mirror in dashcam.MIRRORS:
        img = np.zeros((256, 512, 3), np.float32)
        img[:128, :, 2] = 1.0  # blue sky
        img[128:, :, 1] = 0.5  # green-grey road
        style = dashcam.HoodStyle(top=(0.8, 0.8), bulge=(0.0, 0.0), paint=(0.0, 0.0),
                                  gloss=(1.0, 1.0), mirror=mirror, blur=1.0)  # fmt: skip
        dashcam.hood(img, np.zeros((256, 512), np.uint8), np.random.default_rng(0), style)
        seen[mirror] = img[215:, 100:400].mean(axis=(0, 1))
    assert seen["sky"][2] > 0.5 and seen["sky"][1] < 0.1
    assert seen["road"][1] > 0.3 and seen["road"][2] < 0.1
