"""Render a distillbt report in a real headless browser and save a screenshot to look at.

    python benchmarks/check_report_render.py report/                 # an existing report folder
    python benchmarks/check_report_render.py --results screen.json   # write the report first

Needs Chromium (Debian: ``apt-get install -y chromium``). Checks that the page refers to nothing
on a network, that Chromium renders it, that the screenshot is not blank and that every image
the page links exists; prints the screenshot's path. Exit code 0 if all holds, 1 if not, 2 if
Chromium is missing. Open the screenshot and look at it: this script cannot tell whether a plot
is readable.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_browser() -> str | None:
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


def screenshot(browser: str, page: Path, out: Path, *, width: int, height: int, timeout: float) -> None:
    """One headless Chromium run; the flags keep it off the network and away from the user's profile."""
    with tempfile.TemporaryDirectory(prefix="distillbt-chromium-") as profile:
        command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                   "--disable-background-networking", "--disable-component-update", "--disable-sync",
                   "--hide-scrollbars", f"--user-data-dir={profile}", f"--screenshot={out}",
                   f"--window-size={width},{height}", page.resolve().as_uri()]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0 or not out.is_file():
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"chromium exited with {done.returncode}: {' | '.join(tail)}")


def check_page(page: Path) -> list[str]:
    """Problems with the HTML itself: network references, images it links that are missing."""
    text = page.read_text(encoding="utf-8")
    links = re.findall(r"(?:src|href)=['\"]?((?:https?:)?//[^'\" >]+)", text)
    problems = [f"refers to the network: {m}" for m in links]
    for src in re.findall(r"<img src='([^']+)'", text):
        if not src.startswith("data:") and not (page.parent / src).is_file():
            problems.append(f"missing image {src}")
    return problems


def check_screenshot(path: Path) -> list[str]:
    import matplotlib.image as mpimg

    pixels = mpimg.imread(path)[..., :3]
    return [] if pixels.std() > 0.05 else [f"{path} looks blank"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", nargs="?", help="report folder or its index.html")
    parser.add_argument("--results", help="screen results JSON: write the report (into REPORT or a temp folder) first")
    parser.add_argument("--evaluation", help="with --results: the JSON of `evaluate --out`")
    parser.add_argument("--out", help="screenshot path (default: REPORT/screenshot.png)")
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=4000)
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args(argv)

    folder = Path(args.report) if args.report else Path(tempfile.mkdtemp(prefix="distillbt-report-"))
    if folder.suffix == ".html":
        folder = folder.parent
    if args.results:
        from distillbt.report import write_report

        write_report(args.results, folder, evaluation=args.evaluation)
    page = folder / "index.html"
    if not page.is_file():
        print(f"{page}: no report here (give a report folder, or --results FILE)", file=sys.stderr)
        return 1
    browser = find_browser()
    if browser is None:
        print("no Chromium found (apt-get install -y chromium)", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else folder / "screenshot.png"
    problems = check_page(page)
    try:
        screenshot(browser, page, out, width=args.width, height=args.height, timeout=args.timeout)
        problems += check_screenshot(out)
    except (RuntimeError, subprocess.TimeoutExpired) as error:
        problems.append(str(error))
    for problem in problems:
        print(f"problem: {problem}", file=sys.stderr)
    print(out)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
