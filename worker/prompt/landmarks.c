/* SPDX-License-Identifier: Apache-2.0 */
/*
 * landmarks.c - the city table of the template composer: for each city a
 * real, famous landmark in English, phrased as a concrete scene for SDXL
 * (no vehicles, no named people), and the lookup by Chinese name (with or
 * without its suffix) or English name. Add a city by adding a row; the
 * unit test checks every row resolves with and without its suffix.
 */
#include "landmarks.h"

#include <string.h>
#include <strings.h>

const struct tg_landmark tg_landmark_fallback = {
    "", "", "", "a scenic countryside road winding through rolling hills and terraced fields"};

static const struct tg_landmark landmarks[] = {
    /* municipalities */
    {"北京", "市", "Beijing", "the golden-roofed halls of the Forbidden City"},
    {"上海", "市", "Shanghai", "the Bund skyline along the Huangpu River"},
    {"天津", "市", "Tianjin", "the Tianjin Eye Ferris wheel over the Hai River"},
    {"重庆", "市", "Chongqing", "the stilted Hongyadong buildings on the Jialing River cliffs"},
    /* east */
    {"杭州", "市", "Hangzhou", "West Lake with the Leifeng Pagoda"},
    {"南京", "市", "Nanjing", "the Sun Yat-sen Mausoleum on Purple Mountain"},
    {"苏州", "市", "Suzhou", "the classical Humble Administrator's Garden"},
    {"无锡", "市", "Wuxi", "the shores of Lake Tai at Yuantouzhu"},
    {"常州", "市", "Changzhou", "the Tianning Temple pagoda"},
    {"湖州", "市", "Huzhou", "the stone bridges and canals of Nanxun water town"},
    {"扬州", "市", "Yangzhou", "the Slender West Lake with the Five Pavilion Bridge"},
    {"宁波", "市", "Ningbo", "the Tianyi Pavilion library garden"},
    {"绍兴", "市", "Shaoxing", "the canals and arched bridges of old Shaoxing"},
    {"嘉兴", "市", "Jiaxing", "the South Lake with its pavilion island"},
    {"合肥", "市", "Hefei", "the Lord Bao Memorial Temple in Baohe Park"},
    {"黄山", "市", "Huangshan",
     "the granite peaks and pines of Mount Huangshan above a sea of clouds"},
    {"婺源", "县", "Wuyuan", "the whitewashed Huizhou villages among rapeseed fields of Wuyuan"},
    {"南昌", "市", "Nanchang", "the Pavilion of Prince Teng on the Gan River"},
    {"福州", "市", "Fuzhou", "the Three Lanes and Seven Alleys historic quarter"},
    {"厦门", "市", "Xiamen", "Gulangyu Island with its seaside villas"},
    {"济南", "市", "Jinan", "the Baotu Spring pools among willows"},
    {"青岛", "市", "Qingdao", "the Zhanqiao Pier and red-roofed old town by the sea"},
    {"泰安", "市", "Tai'an", "the stone stairway to the summit of Mount Tai"},
    /* south */
    {"广州", "市", "Guangzhou", "the Canton Tower over the Pearl River"},
    {"深圳", "市", "Shenzhen", "the Shenzhen Bay skyline with the Ping An Finance Center"},
    {"珠海", "市", "Zhuhai", "the Fisher Girl statue on the Zhuhai seafront"},
    {"桂林", "市", "Guilin", "the karst peaks along the Li River"},
    {"南宁", "市", "Nanning", "the pagoda of Qingxiu Mountain among tropical greenery"},
    {"海口", "市", "Haikou", "the arcaded Qilou old street of Haikou"},
    {"三亚", "市", "Sanya", "the palm-lined beach of Yalong Bay"},
    /* centre */
    {"武汉", "市", "Wuhan", "the Yellow Crane Tower above the Yangtze River"},
    {"宜昌", "市", "Yichang", "the Three Gorges of the Yangtze River"},
    {"长沙", "市", "Changsha", "Orange Isle in the Xiang River below Yuelu Mountain"},
    {"张家界", "市", "Zhangjiajie", "the sandstone pillars of Zhangjiajie National Forest Park"},
    {"凤凰", "县", "Fenghuang", "the stilted houses of Fenghuang Ancient Town on the Tuo River"},
    {"郑州", "市", "Zhengzhou", "the Shaolin Temple at the foot of Mount Song"},
    {"洛阳", "市", "Luoyang", "the Longmen Grottoes above the Yi River"},
    {"太原", "市", "Taiyuan", "the ancient halls of the Jinci Temple"},
    {"石家庄", "市", "Shijiazhuang", "the ancient stone arch of the Zhaozhou Bridge"},
    {"承德", "市", "Chengde", "the lakes and pavilions of the Chengde Mountain Resort"},
    {"秦皇岛", "市", "Qinhuangdao", "Old Dragon Head where the Great Wall meets the sea"},
    /* north-east */
    {"哈尔滨", "市", "Harbin", "the ice sculptures of the Harbin Ice and Snow World"},
    {"长春", "市", "Changchun", "the forested shores of Jingyuetan Lake"},
    {"沈阳", "市", "Shenyang", "the Mukden Palace"},
    {"大连", "市", "Dalian", "the Xinghai Bay Bridge along the seafront"},
    /* south-west */
    {"成都", "市", "Chengdu", "the grey-tiled courtyards of Kuanzhai Alley"},
    {"乐山", "市", "Leshan", "the Leshan Giant Buddha carved into the river cliff"},
    {"雅安", "市", "Ya'an", "the misty tea terraces of Mengding Mountain"},
    {"康定", "市", "Kangding", "the snow peak of Mount Gongga above alpine meadows"},
    {"理塘", "县", "Litang", "the golden roofs of Litang Monastery on the high grassland"},
    {"稻城", "县", "Daocheng", "the snow peaks of Yading above turquoise alpine lakes"},
    {"九寨沟", "县", "Jiuzhaigou", "the turquoise lakes and waterfalls of Jiuzhaigou Valley"},
    {"贵阳", "市", "Guiyang", "the Jiaxiu Pavilion on the Nanming River"},
    {"昆明", "市", "Kunming", "Dianchi Lake beneath the Western Hills"},
    {"大理", "市", "Dali", "the Three Pagodas of Chongsheng Temple beneath the Cangshan Mountains"},
    {"丽江", "市", "Lijiang", "the old town of Lijiang beneath Jade Dragon Snow Mountain"},
    {"香格里拉", "市", "Shangri-La", "the golden roofs of Songzanlin Monastery"},
    {"拉萨", "市", "Lhasa", "the Potala Palace"},
    /* north-west */
    {"西安", "市", "Xi'an", "the Ming city wall and the Bell Tower"},
    {"兰州", "市", "Lanzhou", "the Zhongshan iron bridge over the Yellow River"},
    {"敦煌", "市", "Dunhuang", "the Crescent Lake among the Mingsha sand dunes"},
    {"西宁", "市", "Xining", "the Kumbum Monastery with its white stupas"},
    {"银川", "市", "Yinchuan", "the Western Xia Tombs beneath the Helan Mountains"},
    {"呼和浩特", "市", "Hohhot", "the Dazhao Temple with its golden roofs"},
    {"呼伦贝尔", "市", "Hulunbuir", "the endless Hulunbuir grasslands and winding rivers"},
    {"乌鲁木齐", "市", "Urumqi", "the Heavenly Lake beneath the snow-capped Tianshan Mountains"},
    {"喀什", "市", "Kashgar", "the Id Kah Mosque and the old town of Kashgar"},
};

/* the suffixes one of which may end a city name, in UTF-8 */
static const char *const suffixes[] = {"市", "县", "区"};

const struct tg_landmark *tg_landmark_table(size_t *n) {
  *n = sizeof(landmarks) / sizeof(landmarks[0]);
  return landmarks;
}

const struct tg_landmark *tg_landmark_find(const char *city) {
  size_t len, i;
  if (!city)
    return NULL;
  while (*city == ' ')
    city++;
  len = strlen(city);
  while (len && city[len - 1] == ' ')
    len--;
  for (i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
    size_t sl = strlen(suffixes[i]);
    if (len > sl && memcmp(city + len - sl, suffixes[i], sl) == 0) {
      len -= sl;
      break;
    }
  }
  if (!len)
    return NULL;
  for (i = 0; i < sizeof(landmarks) / sizeof(landmarks[0]); i++) {
    const struct tg_landmark *l = &landmarks[i];
    if ((strlen(l->city) == len && memcmp(l->city, city, len) == 0) ||
        (strlen(l->city_en) == len && strncasecmp(l->city_en, city, len) == 0))
      return l;
  }
  return NULL;
}
