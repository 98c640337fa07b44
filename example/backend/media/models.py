from django.db import models


class Image(models.Model):
    listing = models.ForeignKey("marketplace.Listing", on_delete=models.CASCADE, related_name="images")
    path = models.CharField(max_length=255)
    alt_text = models.CharField(max_length=200, blank=True, default="")
    position = models.PositiveSmallIntegerField(default=0)
    uploaded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["listing", "position"]


class Banner(models.Model):
    """The hero image shown on top of a listing page."""

    listing = models.OneToOneField("marketplace.Listing", on_delete=models.CASCADE, related_name="banner")
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="banners")
    headline = models.CharField(max_length=200, blank=True)
