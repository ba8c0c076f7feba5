#!/usr/bin/env python3
"""Generates a reproducible sample: a database-like data directory and a mysqldump-format dump.

    gen-corpus.py DIR [--scale 1.0]

At scale 1.0 (the benchmark corpus, about 1 GiB):
  DIR/tree/dump.sql      ~400 MiB mysqldump-style text, 50 databases
  DIR/tree/binary/       ~300 MiB incompressible data in 12 files
  DIR/tree/small/        ~20,000 small files in 100 folders
  DIR/dump.sql           the same dump, for logical snapshots
Same seed, same bytes: runs are comparable.
"""
import argparse
import os
import random

WORDS = ("alpha beta gamma delta epsilon orders customers invoices shipped pending lamp desk "
         "chair Berlin Paris Lisbon 2024-03-24 22:00:00 NULL true false").split()


def dump(path, size, rng, databases=50):
    per_db = size // databases
    with open(path, "w") as f:
        f.write("-- MariaDB dump 10.19  Distrib 10.11.6-MariaDB, for debian-linux-gnu (x86_64)\n--\n")
        f.write("-- Host: localhost    Database: \n-- ------------------------------------------------------\n")
        f.write("-- Server version\t10.11.6-MariaDB\n\n")
        f.write("/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;\n")
        f.write("/*!40014 SET @OLD_FOREIGN_KEY_CHECKS=@@FOREIGN_KEY_CHECKS, FOREIGN_KEY_CHECKS=0 */;\n\n")
        row_id = 0
        for d in range(databases):
            name = f"app{d:02d}"
            f.write(f"--\n-- Current Database: `{name}`\n--\n\n")
            f.write(f"CREATE DATABASE /*!32312 IF NOT EXISTS*/ `{name}`;\n\nUSE `{name}`;\n\n")
            f.write("--\n-- Table structure for table `events`\n--\n\n")
            f.write("CREATE TABLE `events` (\n  `id` int NOT NULL,\n  `note` text,\n  PRIMARY KEY (`id`)\n);\n\n")
            f.write("--\n-- Dumping data for table `events`\n--\n\n")
            written = 0
            while written < per_db:
                rows = []
                for _ in range(500):
                    row_id += 1
                    note = " ".join(rng.choice(WORDS) for _ in range(12))
                    rows.append(f"({row_id},'{note} {rng.randrange(10**9)}')")
                line = "INSERT INTO `events` VALUES " + ",".join(rows) + ";\n"
                f.write(line)
                written += len(line)
            f.write("\n")
        f.write("/*!40014 SET FOREIGN_KEY_CHECKS=@OLD_FOREIGN_KEY_CHECKS */;\n")
        f.write("/*!40101 SET CHARACTER_SET_CLIENT=@OLD_CHARACTER_SET_CLIENT */;\n\n")
        f.write("-- Dump completed on 2024-03-24 22:00:00\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--scale", type=float, default=1.0)
    a = ap.parse_args()
    rng = random.Random(20240324)
    tree = os.path.join(a.dir, "tree")
    os.makedirs(os.path.join(tree, "binary"), exist_ok=True)
    dump(os.path.join(a.dir, "dump.sql"), int(400 * 2**20 * a.scale), rng)
    os.link(os.path.join(a.dir, "dump.sql"), os.path.join(tree, "dump.sql"))
    binary = int(300 * 2**20 * a.scale)
    for i in range(12):
        with open(os.path.join(tree, "binary", f"ibdata{i}"), "wb") as f:
            left = binary // 12
            while left > 0:
                n = min(left, 1 << 22)
                f.write(rng.randbytes(n))
                left -= n
    files = max(20, int(20000 * a.scale))
    for i in range(files):
        folder = os.path.join(tree, "small", f"d{i % 100:03d}")
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, f"f{i:05d}.frm"), "w") as f:
            f.write(" ".join(rng.choice(WORDS) for _ in range(rng.randrange(5, 400))) + "\n")


if __name__ == "__main__":
    main()
