from django.urls import path

from frontend import views

app_name = "frontend"

urlpatterns = [
    path("", views.home, name="home"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("login/", views.login_page, name="login"),
    path("login/demo/", views.demo_login, name="demo-login"),
    path("logout/", views.logout_view, name="logout"),
    path("projects/<int:project_id>/label/", views.label_page, name="label"),
    path("projects/<int:project_id>/contribute/", views.contribute_page, name="contribute"),
    path("me/rewards/", views.rewards_page, name="rewards"),
    path("buyers/", views.buyers_page, name="buyers"),
    path("me/receipts/<int:entry_id>/", views.receipt_page, name="receipt"),
]
