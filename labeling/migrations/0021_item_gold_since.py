from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("labeling", "0020_item_withdrawn_backfill"),
    ]

    operations = [
        migrations.AddField(
            model_name="item",
            name="gold_since",
            field=models.DateTimeField(
                blank=True,
                editable=False,
                help_text="When a moderator made it gold after it was created: answers given before then saw an ordinary item, so they earn no gold bonus and count neither for nor against gold accuracy. Empty: gold from the start (or not gold).",
                null=True,
            ),
        ),
    ]
