"""Fill an empty, fully migrated database with a few rows, so plans have row counts to show."""

from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import Customer
from marketplace.models import Listing, Order
from media.models import Banner, Image


class Command(BaseCommand):
    help = "Add demo customers, listings, orders, images and banners (once)."

    @transaction.atomic
    def handle(self, *args: object, **options: object) -> None:
        if Customer.objects.exists():
            self.stdout.write("Already seeded.")
            return
        ada = Customer.objects.create(email="ada@example.com", name="Ada Lovelace")
        alan = Customer.objects.create(email="alan@example.com", name="Alan Turing")
        for number, title in enumerate(["Analytical engine", "Difference engine", "Bombe"], start=1):
            listing = Listing.objects.create(seller=ada if number < 3 else alan, title=title, price_cents=number * 1000)
            image = Image.objects.create(listing=listing, path=f"listings/{number}.jpg", alt_text=title)
            Banner.objects.create(listing=listing, image=image, headline=f"{title}, as new")
            Order.objects.create(buyer=alan if number < 3 else ada, listing=listing, total_cents=listing.price_cents)
        self.stdout.write("Seeded 2 customers, 3 listings, 3 orders, 3 images, 3 banners.")
