from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("labeling", "0018_project_reopened_at"),
    ]

    operations = [
        migrations.AddField(
            model_name="item",
            name="withdrawn_at",
            field=models.DateTimeField(
                blank=True,
                editable=False,
                help_text="When its acceptance was last taken back (a recheck reopened it): buyers' incremental syncs get a tombstone for it. Cleared when it is accepted again.",
                null=True,
            ),
        ),
        migrations.AddField(
            model_name="item",
            name="withdrawn_reason",
            field=models.CharField(
                blank=True,
                choices=[
                    ("reopened", "Reopened: its counted answers no longer decide it"),
                    ("banned_labeler", "Reopened: a labeler of it was banned"),
                    ("fraud_flag", "Reopened: a labeler of it is held by a fraud flag"),
                ],
                editable=False,
                max_length=16,
            ),
        ),
        migrations.AddIndex(
            model_name="item",
            index=models.Index(
                condition=models.Q(("withdrawn_at__isnull", False)),
                fields=["project", "withdrawn_at"],
                name="item_withdrawn",
            ),
        ),
    ]
