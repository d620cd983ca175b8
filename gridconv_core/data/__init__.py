"""Data layer: cameras, normalisation, keypoint conversions, loaders, the built-in generator, PoseSet."""
from .camera import Camera, camera_to_world, load_cameras_json, project, world_to_camera
from .formats import load_generic_npz, load_martinez, load_mpi_inf_3dhp, load_videopose3d
from .generator import GeneratorConfig, generate_poses
from .h36m import ACTIONS, CAMERA_IDS, TEST_SUBJECTS, TRAIN_SUBJECTS, h36m_root, load_h36m, load_h36m32
from .keypoints import coco17_to_h36m17, match_joints, mpi3dhp17_to_h36m17, sh16_to_h36m17
from .normalization import normalize, normalize_official, normalize_screen, normalize_wild, unnormalize_screen
from ..errors import DataError
from .poseset import PoseSet

__all__ = [
    "Camera", "world_to_camera", "camera_to_world", "project", "load_cameras_json",
    "ACTIONS", "CAMERA_IDS", "TRAIN_SUBJECTS", "TEST_SUBJECTS", "h36m_root", "load_h36m", "load_h36m32",
    "sh16_to_h36m17", "coco17_to_h36m17", "mpi3dhp17_to_h36m17", "match_joints",
    "normalize", "normalize_screen", "unnormalize_screen", "normalize_official", "normalize_wild",
    "load_videopose3d", "load_martinez", "load_generic_npz", "load_mpi_inf_3dhp",
    "GeneratorConfig", "generate_poses", "DataError", "PoseSet",
]
