"""GPU backends: CUDA through PyCUDA and OpenCL through PyOpenCL (neither is imported by ``import axiom``).

- :mod:`.sources`: the kernel sources (``cuda/*.cu``, written once in a portable dialect;
  ``opencl/*.cl`` include the same bodies) and program assembly;
- :mod:`.runtime`: the device runtime interface and :class:`~.runtime.DeviceArray`;
  :mod:`.opencl_runtime` and :mod:`.cuda_runtime` implement it; :mod:`.nvrtc` compiles CUDA to PTX;
- :mod:`.ops` and the ``ops_*`` modules: one launcher per kernel, with the C ABI's argument lists;
- :mod:`.backend`: :class:`~.backend.CUDABackend` and :class:`~.backend.OpenCLBackend`;
- :mod:`.errors`: device errors naming the device and kernel.
"""
