"""python -m aicc_kernels [--cmake-dir | --include-dir | --library-dir | --config]"""

import argparse
import sys

from . import _cmake


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aicc_kernels", description=__doc__)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--cmake-dir", action="store_true", help="directory of aicc_kernelsConfig.cmake")
    group.add_argument("--include-dir", action="store_true", help="directory holding aicc/*.h")
    group.add_argument("--library-dir", action="store_true", help="directory holding libaicc_core.a")
    group.add_argument("--config", action="store_true", help="print ak.show_config() (the default)")
    args = parser.parse_args(argv)
    try:
        if args.cmake_dir:
            print(_cmake.get_cmake_dir())
        elif args.include_dir:
            print(_cmake.get_include())
        elif args.library_dir:
            print(_cmake.get_library_dir())
        else:
            import aicc_kernels

            aicc_kernels.show_config()
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
