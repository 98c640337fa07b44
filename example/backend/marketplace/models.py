from django.db import models


class Listing(models.Model):
    seller = models.ForeignKey("accounts.Customer", on_delete=models.CASCADE, related_name="listings")
    title = models.CharField(max_length=200)
    price_cents = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)


class Order(models.Model):
    buyer = models.ForeignKey("accounts.Customer", on_delete=models.PROTECT, related_name="orders")
    listing = models.ForeignKey(Listing, on_delete=models.PROTECT, related_name="orders")
    quantity = models.PositiveIntegerField(default=1)
    status = models.CharField(max_length=20, default="open")
    total_cents = models.PositiveIntegerField(default=0)
    placed_at = models.DateTimeField(auto_now_add=True)
