from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("labeling", "0017_annotation_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="project",
            name="reopened_at",
            field=models.DateTimeField(
                blank=True,
                editable=False,
                help_text="When the project last reopened after a pause: an item's wait for its next label (CONSENSUS_LABEL_WAIT_SECONDS) counts from here at the earliest.",
                null=True,
            ),
        ),
    ]
