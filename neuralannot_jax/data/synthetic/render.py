"""A z-buffered triangle rasteriser in numpy, with a pinhole camera and Lambertian shading.

    image, mask, depth = render(vertices, faces, focal, princpt, background)

Conventions: camera space is OpenCV's (x right, y down, z forward, metres); pixel (row i,
column j) has its centre at image coordinates (x=j, y=i), so a point projects to
`u = fx * x / z + cx`, `v = fy * y / z + cy` exactly as `cv2.projectPoints` and the
COCO / Human3.6M annotations do. A pixel belongs to a triangle when its centre lies in the
triangle (edges included, so two triangles sharing an edge leave no gap).

How it works: every triangle enumerates the pixel centres of its bounding box (all
triangles at once, with `np.repeat`), keeps those inside it, and computes their
perspective-correct depth; a sort by (pixel, depth) then keeps the nearest fragment of
each pixel. This is an exact per-pixel z-buffer, so interpenetrating and cyclically
overlapping triangles are resolved correctly (a painter's algorithm cannot do that).
Cost grows with the summed bounding-box area of the triangles, so large triangles in big
images are handled in chunks to bound memory.

Limits: triangles with a vertex at or behind `znear` are dropped, not clipped (fine for
a person in front of the camera; a mesh crossing the camera plane loses those faces).
No anti-aliasing: the mask is binary.
"""

import dataclasses

import numpy as np

# Candidate pixels processed at once; bounds memory at about 100 bytes per candidate.
_CHUNK = 1 << 20


@dataclasses.dataclass(frozen=True)
class Fragments:
  """What the rasteriser saw at each pixel.

  face: (H, W) int32 index of the nearest face, -1 where none.
  bary: (H, W, 3) perspective-correct barycentric weights of that face's vertices.
  depth: (H, W) float32 camera-space z of the surface, +inf where none.
  """
  face: np.ndarray
  bary: np.ndarray
  depth: np.ndarray

  @property
  def mask(self):
    return self.face >= 0


def project(points, focal, princpt):
  """(..., 3) camera-space points -> (..., 2) pixels: u = f x / z + c."""
  points = np.asarray(points, np.float64)
  focal, princpt = np.asarray(focal, np.float64), np.asarray(princpt, np.float64)
  return points[..., :2] / points[..., 2:3] * focal + princpt


def vertex_normals(vertices, faces):
  """(V, 3), (F, 3) -> (V, 3) unit normals: area-weighted sums of the face normals."""
  v = np.asarray(vertices, np.float64)
  tri = v[faces]
  face_n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])  # length = 2 * area
  idx = np.asarray(faces, np.int64).reshape(-1)        # (3F,) face-major, like contrib
  contrib = np.repeat(face_n, 3, axis=0)
  # bincount is much faster than np.add.at for scattering into vertices.
  normals = np.stack([np.bincount(idx, contrib[:, k], minlength=len(v)) for k in range(3)], 1)
  norm = np.linalg.norm(normals, axis=1, keepdims=True)
  return normals / np.maximum(norm, 1e-12)


def _triangle_setup(vertices, faces, focal, princpt, size, znear, cull_backfaces):
  """Screen-space triangles that can produce fragments, with their pixel bounding boxes."""
  height, width = size
  v = np.asarray(vertices, np.float64)
  faces = np.asarray(faces, np.int64)
  z = v[:, 2]
  keep = np.all(z[faces] > znear, axis=1)
  if cull_backfaces:
    # A face whose outward normal (counter-clockwise winding) points away from the
    # camera centre is hidden on a closed mesh.
    tri = v[faces]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    keep &= np.einsum('ij,ij->i', n, tri[:, 0]) < 0
  ids = np.nonzero(keep)[0]
  uv = np.zeros((len(v), 2))
  front = z > znear
  uv[front] = project(v[front], focal, princpt)
  p = uv[faces[ids]]                                    # (F', 3, 2)
  area = ((p[:, 1, 0] - p[:, 0, 0]) * (p[:, 2, 1] - p[:, 0, 1]) -
          (p[:, 1, 1] - p[:, 0, 1]) * (p[:, 2, 0] - p[:, 0, 0]))
  lo = np.ceil(p.min(axis=1)).astype(np.int64)          # first pixel centre inside the box
  hi = np.floor(p.max(axis=1)).astype(np.int64)
  lo = np.maximum(lo, 0)
  hi = np.minimum(hi, [width - 1, height - 1])
  ok = (np.abs(area) > 1e-12) & np.all(hi >= lo, axis=1)
  return ids[ok], p[ok], area[ok], lo[ok], hi[ok]


def _fragments(p, area, lo, hi, zs):
  """Candidate pixels of a batch of triangles that lie inside them.

  Returns (triangle index in batch, pixel x, pixel y, barycentric (N, 3), depth (N,)).
  """
  dims = hi - lo + 1
  counts = dims[:, 0] * dims[:, 1]
  tid = np.repeat(np.arange(len(p)), counts)
  starts = np.cumsum(counts) - counts
  local = np.arange(counts.sum()) - starts[tid]
  bw = dims[tid, 0]
  x = lo[tid, 0] + local % bw
  y = lo[tid, 1] + local // bw
  q = p[tid]
  # Edge functions give screen-space barycentrics; dividing by the signed area makes
  # the inside test independent of the triangle's winding.
  w0 = ((q[:, 2, 0] - q[:, 1, 0]) * (y - q[:, 1, 1]) -
        (q[:, 2, 1] - q[:, 1, 1]) * (x - q[:, 1, 0])) / area[tid]
  w1 = ((q[:, 0, 0] - q[:, 2, 0]) * (y - q[:, 2, 1]) -
        (q[:, 0, 1] - q[:, 2, 1]) * (x - q[:, 2, 0])) / area[tid]
  w2 = 1.0 - w0 - w1
  eps = -1e-9
  inside = (w0 >= eps) & (w1 >= eps) & (w2 >= eps)
  tid, x, y = tid[inside], x[inside], y[inside]
  w = np.stack([w0[inside], w1[inside], w2[inside]], axis=1)
  # 1/z is affine in screen space: interpolate it, then reweight for perspective.
  wz = w / zs[tid]
  inv_z = wz.sum(axis=1)
  return tid, x, y, wz / inv_z[:, None], 1.0 / inv_z


def rasterize(vertices, faces, focal, princpt, size, *, znear=1e-3, cull_backfaces=False):
  """Nearest face, barycentrics and depth at every pixel.

  Args:
    vertices: (V, 3) camera space, metres.
    faces: (F, 3) vertex indices.
    focal, princpt: (2,) fx, fy and cx, cy in pixels.
    size: (height, width) of the image.
    znear: faces with a vertex at z <= znear are dropped.
    cull_backfaces: skip faces turned away from the camera (closed meshes with
      counter-clockwise outward winding only; the z-buffer is correct without it).
  Returns:
    `Fragments`.
  """
  height, width = int(size[0]), int(size[1])
  faces = np.asarray(faces, np.int64)
  ids, p, area, lo, hi = _triangle_setup(vertices, faces, focal, princpt, (height, width),
                                         znear, cull_backfaces)
  zs = np.asarray(vertices, np.float64)[faces[ids], 2]         # (F', 3)
  ends = np.cumsum(np.prod(hi - lo + 1, axis=1))
  parts, start = [], 0
  while start < len(ids):
    # Whole triangles per chunk, about _CHUNK candidate pixels each (at least one triangle).
    base = ends[start - 1] if start else 0
    stop = max(int(np.searchsorted(ends, base + _CHUNK, side='right')), start + 1)
    sl = slice(start, stop)
    tid, x, y, bary, z = _fragments(p[sl], area[sl], lo[sl], hi[sl], zs[sl])
    parts.append((ids[sl][tid], y * width + x, bary, z))
    start = stop
  face = np.full(height * width, -1, np.int32)
  bary_map = np.zeros((height * width, 3), np.float32)
  depth = np.full(height * width, np.inf, np.float32)
  if parts:
    fid, pix, bary, z = (np.concatenate(a) for a in zip(*parts))
    # Sort by pixel, then depth (then face, for determinism on exact ties); the first
    # fragment of each pixel is the visible one.
    order = np.lexsort((fid, z, pix))
    pix_s = pix[order]
    first = order[np.r_[True, pix_s[1:] != pix_s[:-1]]]
    face[pix[first]] = fid[first]
    bary_map[pix[first]] = bary[first]
    depth[pix[first]] = z[first]
  return Fragments(face.reshape(height, width), bary_map.reshape(height, width, 3),
                   depth.reshape(height, width))


def shade(fragments, vertices, faces, *, colors=None, face_colors=None,
          light_dir=(0.3, -0.5, -1.0), ambient=0.35, diffuse=0.65, smooth=True):
  """Lambertian colours of the covered pixels.

  Args:
    fragments: from `rasterize`.
    vertices (V, 3), faces (F, 3): the mesh given to `rasterize`.
    colors: (3,) one colour or (V, 3) per-vertex colours, 0..255, in the channel order
      of the image they will be drawn on (BGR for OpenCV).
    face_colors: (F, 3) per-face colours instead (per-part colouring); wins over colors.
    light_dir: camera-space direction from the surface towards the light (the default
      comes from above-right of the camera).
    ambient, diffuse: intensity = ambient + diffuse * max(0, n . l).
    smooth: interpolate vertex normals (else flat face normals).
  Returns:
    (N, 3) float colours of the pixels where `fragments.mask`, in row-major order.
  """
  faces = np.asarray(faces, np.int64)
  v = np.asarray(vertices, np.float64)
  mask = fragments.mask
  fid = fragments.face[mask]
  bary = fragments.bary[mask].astype(np.float64)
  tri = faces[fid]
  if smooth:
    normals = np.einsum('nk,nkc->nc', bary, vertex_normals(v, faces)[tri])
  else:
    t = v[tri]
    normals = np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0])
  normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
  points = np.einsum('nk,nkc->nc', bary, v[tri])
  # Two-sided lighting: a normal seen from behind (open meshes, no culling) is flipped.
  flip = np.einsum('nc,nc->n', normals, points) > 0
  normals[flip] *= -1
  light = np.asarray(light_dir, np.float64)
  light = light / np.linalg.norm(light)
  intensity = ambient + diffuse * np.clip(normals @ light, 0.0, None)
  if face_colors is not None:
    base = np.asarray(face_colors, np.float64)[fid]
  elif colors is None:
    base = np.full((len(fid), 3), 200.0)
  else:
    colors = np.asarray(colors, np.float64)
    base = (np.broadcast_to(colors, (len(fid), 3)) if colors.ndim == 1
            else np.einsum('nk,nkc->nc', bary, colors[tri]))
  return base * intensity[:, None]


def render(vertices, faces, focal, princpt, image=None, *, size=None, colors=None,
           face_colors=None, light_dir=(0.3, -0.5, -1.0), ambient=0.35, diffuse=0.65,
           alpha=1.0, smooth=True, cull_backfaces=False, znear=1e-3):
  """Draw a mesh over an image with a pinhole camera.

  Args:
    vertices: (V, 3) camera space, metres (OpenCV axes).
    faces: (F, 3) vertex indices.
    focal, princpt: (2,) pixels.
    image: (H, W, 3) background (uint8 or float; not modified), or None for black
      with `size` = (H, W).
    colors, face_colors, light_dir, ambient, diffuse, smooth: see `shade`.
    alpha: opacity of the mesh over the background (1 = opaque; < 1 for overlays).
    cull_backfaces, znear: see `rasterize`.
  Returns:
    image (H, W, 3) same dtype as the background, mask (H, W) bool where the mesh
    is drawn, depth (H, W) float32 camera z of the mesh, +inf elsewhere.
  """
  if image is None:
    if size is None:
      raise ValueError('render needs a background image or size=(height, width)')
    image = np.zeros(tuple(size) + (3,), np.uint8)
  image = np.asarray(image)
  fragments = rasterize(vertices, faces, focal, princpt, image.shape[:2], znear=znear,
                        cull_backfaces=cull_backfaces)
  mask = fragments.mask
  out = image.copy()
  rgb = shade(fragments, vertices, faces, colors=colors, face_colors=face_colors,
              light_dir=light_dir, ambient=ambient, diffuse=diffuse, smooth=smooth)
  if alpha < 1.0:
    rgb = alpha * rgb + (1.0 - alpha) * image[mask].astype(np.float64)
  if np.issubdtype(out.dtype, np.integer):
    rgb = np.clip(np.round(rgb), 0, np.iinfo(out.dtype).max)
  out[mask] = rgb.astype(out.dtype)
  return out, mask, fragments.depth
