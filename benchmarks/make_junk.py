"""Generate the junk reference set for `python -m factory calibrate` (seeded, reproducible).

Kinds of junk seen in crawled and scraped corpora: navigation menus, cookie/consent banners,
keyboard-mash gibberish, lorem ipsum, keyword-stuffed SEO spam, JavaScript/CSS remnants,
tag clouds, numeric table dumps, error pages, and repeated boilerplate footers.

    python benchmarks/make_junk.py factory/sample_data/junk.parquet --n 600
"""
from __future__ import annotations

import argparse
import random
import string

import pyarrow as pa
import pyarrow.parquet as pq

NAV = ["Home", "About Us", "Contact", "Privacy Policy", "Terms of Use", "Blog", "Careers", "Login", "Sign up",
       "FAQ", "Products", "Pricing", "Support", "Sitemap", "News", "Events", "Shop", "Cart"]
COOKIE = ["We use cookies to improve your experience on our website.",
          "By continuing to browse, you agree to our use of cookies.", "Accept all", "Reject all",
          "Manage preferences", "Learn more about our cookie policy."]
LOREM = ("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et "
         "dolore magna aliqua ut enim ad minim veniam quis nostrud exercitation ullamco laboris").split()
SPAM = ["cheap", "best", "buy", "online", "discount", "shoes", "free shipping", "sale", "deal", "top rated",
        "viagra", "casino", "bonus", "win", "now", "click here"]
JS = ["function(){var a=document.getElementById('nav');a.style.display='none';}",
      "window.dataLayer=window.dataLayer||[];function gtag(){dataLayer.push(arguments);}",
      ".header{margin:0;padding:0 12px;} .footer a{color:#333;}", "if(x){return y;} else {z++;}",
      "$(document).ready(function(){ $('.menu').toggle(); });"]
FOOTER = ["Copyright 2024 All rights reserved.", "Powered by WordPress.", "Follow us on Facebook Twitter Instagram",
          "Subscribe to our newsletter", "Back to top"]
ERRORS = ["404 Not Found", "The page you requested could not be found.", "Error 503 Service Unavailable",
          "Please enable JavaScript to view this page.", "Access denied. You don't have permission."]


def gibberish(rng: random.Random) -> str:
    words = ["".join(rng.choice(string.ascii_lowercase + "0123456789") for _ in range(rng.randint(2, 14)))
             for _ in range(rng.randint(30, 200))]
    return " ".join(words)


def make(kind: str, rng: random.Random) -> str:
    if kind == "nav":
        return "\n".join(" | ".join(rng.sample(NAV, rng.randint(3, 8))) for _ in range(rng.randint(3, 20)))
    if kind == "cookie":
        return "\n".join(rng.choice(COOKIE) for _ in range(rng.randint(3, 12)))
    if kind == "gibberish":
        return gibberish(rng)
    if kind == "lorem":
        return " ".join(rng.choice(LOREM) for _ in range(rng.randint(50, 300))) + "."
    if kind == "spam":
        return " ".join(rng.choice(SPAM) for _ in range(rng.randint(40, 200)))
    if kind == "code":
        return "\n".join(rng.choice(JS) for _ in range(rng.randint(3, 30)))
    if kind == "tags":
        return "\n".join(rng.choice(NAV + SPAM + LOREM) for _ in range(rng.randint(20, 80)))
    if kind == "table":
        return "\n".join(" ".join(f"{rng.uniform(0, 1000):.2f}" for _ in range(rng.randint(3, 8)))
                         for _ in range(rng.randint(5, 40)))
    if kind == "error":
        return " ".join(rng.sample(ERRORS, rng.randint(1, 3)))
    if kind == "footer":
        return "\n".join(rng.choice(FOOTER) for _ in range(rng.randint(4, 15)))
    raise ValueError(kind)


KINDS = ("nav", "cookie", "gibberish", "lorem", "spam", "code", "tags", "table", "error", "footer")


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    args.add_argument("out")
    args.add_argument("--n", type=int, default=600)
    args.add_argument("--seed", type=int, default=7)
    opts = args.parse_args()
    rng = random.Random(opts.seed)
    kinds = [KINDS[i % len(KINDS)] for i in range(opts.n)]
    table = pa.table({
        "id": [f"junk-{k}-{i:05d}" for i, k in enumerate(kinds)],
        "text": [make(k, rng) for k in kinds],
        "kind": kinds,
    })
    pq.write_table(table, opts.out, compression="zstd")
    print(f"wrote {table.num_rows} junk documents to {opts.out}")


if __name__ == "__main__":
    main()
