import os
import sys

# A worker emulates one device: one BLAS thread. Several OpenBLAS threads spin-waiting inside a
# small cgroup CPU quota (emulation.compute: real) burn the quota and stall the gradient.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from services.worker.service import main  # noqa: E402 - after the thread limits

sys.exit(main())
